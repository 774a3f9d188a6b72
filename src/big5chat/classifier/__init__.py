"""The trait classifier: model, training, metrics and ``score_traits`` for every later stage."""

from big5chat.classifier.scoring import TraitScorer, score_traits

__all__ = ["TraitScorer", "score_traits"]
