"""Process environment for stages: offline hub, quiet progress bars, passive OpenMP, threads, seeds."""

from __future__ import annotations

import os
import random
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def stage_environment(
    hf_hub_offline: bool, base: dict[str, str] | None = None, omp_wait_policy: str = "PASSIVE", device: str = "auto"
) -> dict[str, str]:
    """The environment a stage (and its notebook kernel) runs with."""
    env = dict(os.environ if base is None else base)
    # Spinning OpenMP threads slow CPU work 10-30x under contention; PASSIVE costs ~20% on an idle machine.
    env["OMP_WAIT_POLICY"] = omp_wait_policy
    env["BIG5CHAT_DEVICE"] = device  # read by big5chat.models.loading.stage_device()
    if hf_hub_offline:
        env["HF_HUB_OFFLINE"] = "1"
        env["HF_DATASETS_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
    else:
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(k, None)
    # Progress bars go to the stage log, not into executed notebooks: few updates, no hub bars.
    env.setdefault("TQDM_MININTERVAL", "10")
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    env["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    env["TRANSFORMERS_VERBOSITY"] = "error"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    # Library deprecation notices (transformers 5 renames, tqdm's missing notebook widgets) are not stage news.
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore:IProgress not found")
    from big5chat import paths

    env.setdefault("HF_DATASETS_CACHE", str(paths.SCRATCH / "hf_datasets"))
    env["BIG5CHAT_ROOT"] = str(paths.ROOT)
    return env


def setup(threads: int = 0, seed: int | None = None) -> dict[str, Any]:
    """Call at the top of a notebook: torch threads and seeds; returns what was set (for the record)."""
    import numpy as np
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    info: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "python": sys.version.split()[0], "torch": torch.__version__}
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        info["seed"] = seed
    return info


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children, MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def peak_gpu_mib() -> float | None:
    """Peak GPU memory torch allocated in this process, MiB; None where CUDA was never used (torch not even imported)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


@contextmanager
def timed(record: dict[str, Any], key: str = "wall_s") -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        record[key] = round(time.perf_counter() - start, 2)


def write_run_record(stage: str, record: dict[str, Any], env: dict[str, Any] | None = None) -> Any:
    """Wall times, peak memory and environment of a stage run: reports/runs/<stage>.json.

    Kept apart from the metrics so that metrics stay byte-identical across reruns.
    """
    from big5chat import paths, storage

    data = {"stage": stage, **record, "peak_rss_mib": peak_rss_mib(), "env": env or {}}
    gpu = peak_gpu_mib()
    if gpu is not None:
        data["peak_gpu_mib"] = gpu
    return storage.write_json(paths.REPORTS / "runs" / f"{stage}.json", data)
