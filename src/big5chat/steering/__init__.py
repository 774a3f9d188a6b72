"""Activation steering: trait directions in the residual stream, learned from contrastive texts and added at chosen
layers (contrastive activation addition / mean-difference vectors)."""
