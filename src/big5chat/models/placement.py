"""Where an unquantized model goes on GPUs: one card when it fits, else spread over the GPUs this process owns
(transformers' ``device_map`` with per-GPU limits), else a clear error naming the memory it needs.

Under a launcher (torchrun, accelerate) with L processes on a node of V visible GPUs, process ``LOCAL_RANK`` owns the
contiguous block of V // L GPUs (``process_gpus``), so that data-parallel shards of a model bigger than one GPU
(``generation.shards``) never share a card. ``plan.wall_clock`` assumes the same layout.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from big5chat.models.dtypes import torch_dtype

MARGIN = 0.9  # of a GPU's free memory the weights may take (activations and the KV cache need the rest)


class PlacementError(RuntimeError):
    pass


@dataclass(frozen=True)
class Placement:
    gpus: list[int]
    spread: bool = False  # True: device_map over ``gpus`` with ``max_memory``
    max_memory: dict[int, int] = field(default_factory=dict)

    def from_pretrained_kwargs(self) -> dict[str, object]:
        if not self.spread:
            return {}
        return {"device_map": "auto", "max_memory": {i: self.max_memory[i] for i in self.gpus}}


def process_gpus(local_rank: int, local_world: int, visible: int) -> list[int]:
    """The GPUs a process owns: the ``local_rank``-th block of ``visible // local_world``."""
    if visible < 1:
        raise PlacementError("no GPU visible to this process")
    per = visible // local_world
    if per < 1:
        raise PlacementError(f"{local_world} processes on this node but only {visible} GPU(s): at most one process per GPU")
    return list(range(local_rank * per, (local_rank + 1) * per))


def weight_count(folder: str | Path) -> int:
    """Parameters in a model folder's safetensors files (read from their headers; nothing is loaded)."""
    total = 0
    for f in sorted(Path(folder).glob("*.safetensors")):
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, meta in header.items():
            if name != "__metadata__":
                count = 1
                for d in meta["shape"]:
                    count *= d
                total += count
    return total


def place(needed: int, free: dict[int, int], what: str) -> Placement:
    """One GPU if ``needed`` bytes fit its free memory (x ``MARGIN``), else all of ``free``'s GPUs, else an error."""
    gpus = sorted(free)
    if not gpus:
        raise PlacementError(f"{what}: no GPU to place it on")
    if needed <= free[gpus[0]] * MARGIN:
        return Placement([gpus[0]])
    if needed <= sum(free.values()) * MARGIN:
        return Placement(gpus, spread=True, max_memory={i: int(free[i] * MARGIN) for i in gpus})
    raise PlacementError(
        f"{what} needs {needed / 1e9:.1f} GB for its weights but this process's {len(gpus)} GPU(s) have "
        f"{sum(free.values()) / 1e9:.1f} GB free: run fewer processes per node (compute.num_processes) so each owns more GPUs, "
        "or load it 4/8-bit (models.*.quantize)"
    )


def placement_for(folder: str | Path, dtype: str) -> Placement:
    """This process's placement of the model in ``folder`` (CUDA)."""
    import torch

    gpus = process_gpus(int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count())
    free = {i: torch.cuda.mem_get_info(i)[0] for i in gpus}
    return place(weight_count(folder) * torch_dtype(dtype).itemsize, free, f"{folder} ({dtype})")
