"""The multi-process launch of a ``python -m big5chat`` command: ``compute.launcher`` (accelerate or torchrun) with
``compute.num_processes`` processes on this machine. Training (``training_run``) and data-parallel generation
(``generation.dataset``) both start their workers here."""

from __future__ import annotations

import sys
from typing import Any


def launcher_command(compute: Any, tail: list[str]) -> list[str]:
    """``tail`` (arguments after the Python executable, e.g. ``-m big5chat train-sft --config RUN``) under the launcher."""
    from big5chat import paths

    if compute.launcher == "accelerate":
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(paths.resolve(compute.accelerate_config)),
                "--num_processes", str(compute.num_processes), *tail]  # fmt: skip
    if compute.launcher == "torchrun":  # plain DDP; on CPUs the processes talk over gloo
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(compute.num_processes), *tail]
    raise ValueError(f"unknown launcher {compute.launcher!r}")
