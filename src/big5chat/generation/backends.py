"""Sampling backends for plain generation (questionnaire generation mode, lm-eval): Hugging Face (default, the
only one in CI) or vLLM when it is installed (GPU machines). lm-eval also takes ``hf_prefix``: HFLM that runs each
shared context once across a request's answer choices (``big5chat.reasoning.prefix_lm``; log-likelihoods only)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, Literal

Backend = Literal["hf", "hf_prefix", "vllm"]
HF_BACKENDS = ("hf", "hf_prefix")  # lm-eval models on the loaded Hugging Face model (placed with a device)


class BackendUnavailable(RuntimeError):
    pass


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def require(backend: Backend) -> None:
    """Raise a clear error when a backend cannot run here."""
    if backend == "vllm" and not vllm_available():
        raise BackendUnavailable(
            "backend 'vllm' is not installed here: `pip install vllm` on a machine with an NVIDIA GPU, or use the "
            "default backend 'hf' (the only one the tests and the CPU profiles use)"
        )
    if backend not in ("hf", "hf_prefix", "vllm"):
        raise BackendUnavailable(f"unknown backend {backend!r} (use 'hf', 'hf_prefix' or 'vllm')")


def lm_eval_model_args(
    backend: Backend, model_dir: str, adapter_dir: str | None = None, dtype: str = "bfloat16", batch_size: int | str = "auto"
) -> tuple[str, dict[str, Any]]:
    """(lm-eval model name, model args) for a backend; hf_prefix takes hf's args; vLLM serves LoRA adapters with
    ``enable_lora``."""
    require(backend)
    if backend in HF_BACKENDS:
        args: dict[str, Any] = {"pretrained": model_dir, "dtype": dtype, "batch_size": batch_size}
        if adapter_dir:
            args["peft"] = adapter_dir
        return backend, args
    args = {"pretrained": model_dir, "dtype": dtype, "gpu_memory_utilization": 0.85, "tensor_parallel_size": visible_gpus()}
    if adapter_dir:
        args.update({"lora_local_path": adapter_dir, "enable_lora": True, "max_lora_rank": 64})
    return "vllm", args


def visible_gpus() -> int:
    """GPUs this process sees (CUDA_VISIBLE_DEVICES): vLLM shards the model over all of them (a 70B base needs
    several); 1 where torch sees none."""
    import torch

    return max(1, torch.cuda.device_count())


def vllm_sample(
    model_dir: str, prompts: list[str], *, temperature: float, max_new_tokens: int, seed: int | Sequence[int], adapter_dir: str | None = None
) -> list[str]:
    """Sampled completions of rendered prompts with vLLM (one engine per call; for the paper profiles on GPUs).

    ``seed``: one seed for every prompt, or one per prompt. vLLM seeds each request's own generator, so prompts that
    share a seed share their random draws; give one seed per prompt for independent samples.
    """
    require("vllm")
    from vllm import LLM, SamplingParams  # type: ignore[import-not-found]

    seeds = [seed] * len(prompts) if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    if not prompts:
        return []
    lora: dict[str, Any] = {"enable_lora": True, "max_lora_rank": 64} if adapter_dir else {}
    llm = LLM(model=model_dir, seed=seeds[0], tensor_parallel_size=visible_gpus(), **lora)
    params = [SamplingParams(temperature=temperature, max_tokens=max_new_tokens, seed=s) for s in seeds]
    kwargs: dict[str, Any] = {}
    if adapter_dir:
        from vllm.lora.request import LoRARequest  # type: ignore[import-not-found]

        kwargs["lora_request"] = LoRARequest("adapter", 1, adapter_dir)
    return [o.outputs[0].text for o in llm.generate(prompts, params, **kwargs)]
