"""Adding a vector to the residual stream with forward hooks that are always removed.

``steered(model, deltas)`` adds ``deltas[layer]`` to the output of that decoder layer at every position, for the
duration of a ``with`` block; the hooks are removed on exit, even when the block raises. A delta of shape
``[hidden]`` steers every row alike; one of shape ``[batch, hidden]`` gives each row of the batch its own vector
(one batch can then hold several traits and levels).

Hand-written rather than a library's: ``steering-vectors`` 0.12.2 requires ``transformers<5`` and ``repeng`` 0.4.0
requires ``numpy<2`` (plus gguf), and the project pins transformers 5.24 and numpy 2; the hooks are a dozen lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The model's stack of decoder layers (also inside a PEFT wrapper): the ModuleList with one entry per hidden
    layer of the config."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.endswith("layers") and (n is None or len(module) == n):
            return module
    raise ValueError(f"no decoder layer stack found in {type(model).__name__} (looked for a ModuleList named '*layers' of length {n})")


def check_layers(model: Any, layers: list[int]) -> None:
    n = len(decoder_layers(model))
    bad = [layer for layer in layers if not 0 <= layer < n]
    if bad:
        raise ValueError(f"steering layers {bad} out of range: the model has {n} decoder layers (0..{n - 1})")


def _add(delta: torch.Tensor) -> Any:
    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        d = delta.to(device=hidden.device, dtype=hidden.dtype)
        if d.dim() == 2:  # one vector per row
            if d.shape[0] != hidden.shape[0]:
                raise ValueError(f"per-row steering for {d.shape[0]} rows applied to a batch of {hidden.shape[0]}")
            d = d[:, None, :]
        hidden = hidden + d
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    return hook


@contextmanager
def steered(model: Any, deltas: Mapping[int, torch.Tensor] | None) -> Iterator[Any]:
    """``model`` with ``deltas[layer]`` added to each listed decoder layer's output inside the block; ``None`` or
    an empty mapping leaves the model as it is."""
    if not deltas:
        yield model
        return
    layers = decoder_layers(model)
    check_layers(model, list(deltas))
    handles = []
    try:
        for layer, delta in deltas.items():
            handles.append(layers[layer].register_forward_hook(_add(delta)))
        yield model
    finally:
        for h in handles:
            h.remove()


class StopForward(Exception):
    """Raised by ``reading(..., stop=True)`` after the last layer it reads: the rest of the forward is not needed."""


@contextmanager
def reading(model: Any, layers: list[int], *, stop: bool = False) -> Iterator[dict[int, torch.Tensor]]:
    """Inside the block, each forward stores the listed layers' outputs in the yielded dict (the last call's). With
    ``stop``, the forward ends after the deepest listed layer by raising ``StopForward`` (catch it around the call)."""
    check_layers(model, layers)
    stack, seen, handles, last = decoder_layers(model), {}, [], max(layers)

    def keep(layer: int) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            seen[layer] = (output[0] if isinstance(output, tuple) else output).detach()
            if stop and layer == last:
                raise StopForward

        return hook

    try:
        for layer in layers:
            handles.append(stack[layer].register_forward_hook(keep(layer)))
        yield seen
    finally:
        for h in handles:
            h.remove()
