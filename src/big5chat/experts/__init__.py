"""Expert generators: one LM per trait that completes a post at a given trait level."""
