"""Personality questionnaires: administration (generation or log-prob), parsing, scoring, reliability, correlation."""
