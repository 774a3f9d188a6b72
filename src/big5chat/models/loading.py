"""The one loading policy: safetensors only, never ``trust_remote_code``, pad token and chat template checked.

Every stage loads models through these functions, from folders that ``prepare_models`` wrote (or any
local folder that passes the same checks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from big5chat.models.dtypes import ModelLoadError, torch_dtype
from big5chat.models.placement import PlacementError, placement_for

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def stage_device() -> str:
    """The torch device stages run on: ``runtime.device`` (env BIG5CHAT_DEVICE, set by the stage runner);
    ``auto`` (and no setting, as in tests) means CUDA when torch sees a GPU, else CPU."""
    import torch

    wanted = os.environ.get("BIG5CHAT_DEVICE", "auto")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("runtime.device is 'cuda' but torch sees no GPU here (torch " + torch.__version__ + "); use 'auto' or 'cpu'")
    return wanted


def model_device(model: Any) -> Any:
    """Where a model's inputs go (its first parameter's device; sharded models take inputs on their first shard)."""
    return next(model.parameters()).device


def resolve_alias(path: str | Path) -> Path:
    """A folder whose card says ``{"same_as": "<sibling>"}`` stands for that sibling (``expert_base`` = base)."""
    p = Path(path)
    same_as = read_card(p).get("same_as") if p.is_dir() else None
    return p.parent / same_as if same_as else p


def check_model_dir(path: str | Path) -> Path:
    """The folder exists, has config.json and safetensors weights, and no pickle-only weights."""
    p = resolve_alias(path)
    if not p.is_dir():
        raise ModelLoadError(f"model folder not found: {p} (run `dvc repro prepare_models` first?)")
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"{p}: no config.json, so this is not a model folder")
    weights = sorted(p.glob("*.safetensors"))
    if not weights:
        pickles = sorted(f.name for f in p.iterdir() if f.suffix.lower() in PICKLE_SUFFIXES)
        detail = (
            f"; it has {', '.join(pickles)}: pickle-based weights can run code when loaded and are refused. Convert them to safetensors first"
            if pickles
            else ""
        )
        raise ModelLoadError(f"{p}: no .safetensors weights{detail}")
    return p


def read_card(path: str | Path) -> dict[str, Any]:
    """The JSON card that prepare_models writes beside each model ({} when absent)."""
    card = Path(path) / "card.json"
    return json.loads(card.read_text(encoding="utf-8")) if card.is_file() else {}


def load_tokenizer(
    path: str | Path,
    *,
    padding_side: Literal["left", "right"] | None = None,
    require_chat_template: bool = False,
    causal: bool = False,
) -> Any:
    """A tokenizer with a pad token (distinct from EOS for causal LMs) and, if asked, a chat template."""
    from transformers import AutoTokenizer

    p = resolve_alias(path)
    if not p.is_dir():
        raise ModelLoadError(f"tokenizer folder not found: {p}")
    tok = AutoTokenizer.from_pretrained(str(p), trust_remote_code=False)
    if tok.pad_token_id is None:
        raise ModelLoadError(f"{p}: the tokenizer has no pad token (prepare_models sets one; was it skipped?)")
    if causal and tok.eos_token_id is not None and tok.pad_token_id == tok.eos_token_id:
        raise ModelLoadError(
            f"{p}: the pad token is the EOS token {tok.eos_token!r}; training would mask every EOS label. prepare_models picks a distinct pad token"
        )
    if require_chat_template and not getattr(tok, "chat_template", None):
        raise ModelLoadError(f"{p}: the tokenizer has no chat template, and this stage formats chats")
    if padding_side:
        tok.padding_side = padding_side
    return tok


def contiguous_lm_head_input(model: Any) -> Any:
    """Make the LM head's input contiguous before the matmul.

    Decoding keeps only the last position (``hidden[:, -1:, :]``), a non-contiguous view. With frozen weights
    (LoRA, or any ``requires_grad=False``) PyTorch's CPU matmul then takes a batched path that copies the
    vocabulary x hidden weight once per row: measured here 9.4 s instead of 2.5 s for 120 questionnaire items
    of a bf16 SmolLM2 with adapters loaded. Copying the [batch, 1, hidden] input instead costs nothing.
    """
    head = model.get_output_embeddings()
    if head is not None and not getattr(head, "_big5chat_contiguous", False):
        head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
        head._big5chat_contiguous = True
    return model


def quantization_kwargs(quantize: str | None, dtype: str, device: str) -> dict[str, Any]:
    """from_pretrained arguments for 4-bit (NF4, as QLoRA) or 8-bit loading with bitsandbytes; CUDA only."""
    if not quantize:
        return {}
    if quantize not in ("4bit", "8bit"):
        raise ModelLoadError(f"unknown quantize {quantize!r} (use 4bit, 8bit or null)")
    if device != "cuda":
        raise ModelLoadError(f"models.*.quantize={quantize} needs a CUDA GPU (bitsandbytes); this run is on {device}")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ModelLoadError(f"models.*.quantize={quantize} needs bitsandbytes: pip install bitsandbytes ({exc})") from exc
    if quantize == "4bit":
        cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch_dtype(dtype))  # fmt: skip
    else:
        cfg = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": cfg, "device_map": "auto"}


def card_dtype(path: str | Path) -> str:
    """The dtype the model's card asks for (``models.<role>.dtype`` at prepare_models); float32 without a card."""
    return str(read_card(resolve_alias(path)).get("dtype") or "float32")


def tensor_parallel_kwargs(folder: Path, size: int) -> dict[str, Any]:
    """from_pretrained arguments that split the model over the ``size`` processes of this launch (its whole
    torch.distributed world): transformers' own tensor-parallel plan for the architecture, checked to split the
    heads evenly."""
    import torch.distributed as dist
    from transformers.distributed.configuration_utils import DistributedConfig

    world = dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))
    if world != size:
        raise ModelLoadError(f"{folder}: tensor parallel over {size} processes needs a launch of exactly {size} processes, this one has {world}")
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    heads = {k: cfg[k] for k in ("num_attention_heads", "num_key_value_heads") if isinstance(cfg.get(k), int)}
    uneven = {k: v for k, v in heads.items() if v % size}
    if uneven:
        raise ModelLoadError(f"{folder}: {', '.join(f'{k}={v}' for k, v in uneven.items())} cannot be split over "
                             f"{size} tensor-parallel processes; use a divisor of {min(heads.values())}")  # fmt: skip
    return {"distributed_config": DistributedConfig(tp_plan="auto", tp_size=size)}


def load_causal_lm(path: str | Path, *, dtype: str | None = None, device: str | None = None, tensor_parallel: int = 1) -> Any:
    """A causal LM in eval mode, from safetensors only, on ``device`` (default: the stage's device), in ``dtype``
    (default: the card's, ``card_dtype``).

    A model whose card asks for quantization (``models.base.quantize``) is loaded 4- or 8-bit across the visible
    GPUs; on a CPU that is refused with the reason. With ``tensor_parallel`` T > 1 (the T processes of a launch, which
    all call this together) each process holds 1/T of every layer on its device and gets the full logits.
    """
    from transformers import AutoModelForCausalLM

    p = check_model_dir(path)
    device = device or stage_device()
    dtype = dtype or card_dtype(p)
    placing = quantization_kwargs(read_card(p).get("quantize"), dtype, device)
    placement = None
    # where the weights go: as quantization places them; split over this launch's processes (tensor parallel); on
    # CUDA one card if it fits, else this process's GPUs (models.placement), else an error
    if tensor_parallel > 1:
        if placing:
            raise ModelLoadError(f"{p}: a quantized model ({read_card(p).get('quantize')}) is not split tensor-parallel here; "
                                 "use generate_dialogues.tensor_parallel: 1 or models.*.quantize: null")  # fmt: skip
        placing = tensor_parallel_kwargs(p, tensor_parallel)
    elif not placing and device == "cuda":
        try:
            placement = placement_for(p, dtype)
        except PlacementError as exc:
            raise ModelLoadError(str(exc)) from None
        placing = placement.from_pretrained_kwargs()
    model = AutoModelForCausalLM.from_pretrained(str(p), dtype=torch_dtype(dtype), use_safetensors=True, trust_remote_code=False, **placing)
    if placement is not None and not placement.spread:
        model = model.to(f"cuda:{placement.gpus[0]}")
    elif not placing and device not in ("cpu", "cuda"):
        model = model.to(device)
    return contiguous_lm_head_input(model).eval()


def held_share(model: Any) -> float:
    """The share of a model's weights this process holds: 1.0 for a whole model, 1/T for one split T-way."""
    total = held = 0
    for p in model.parameters():
        total += p.numel()
        held += p.to_local().numel() if hasattr(p, "to_local") else p.numel()
    return held / total if total else 1.0


def load_encoder(path: str | Path, *, dtype: str = "float32", device: str | None = None) -> Any:
    """A bare encoder (no task head) in eval mode, from safetensors only."""
    from transformers import AutoModel

    p = check_model_dir(path)
    model = AutoModel.from_pretrained(str(p), dtype=torch_dtype(dtype), use_safetensors=True, trust_remote_code=False)
    device = device or stage_device()
    return (model.to(device) if device != "cpu" else model).eval()


def load_chat_model(
    path: str | Path,
    *,
    dtype: str | None = None,
    padding_side: Literal["left", "right"] = "left",
    device: str | None = None,
    tensor_parallel: int = 1,
) -> tuple[Any, Any]:
    """(model, tokenizer) of a chat LM: the tokenizer must have a chat template and a distinct pad token; ``dtype``
    defaults to the card's; ``tensor_parallel`` as in ``load_causal_lm``."""
    tok = load_tokenizer(path, padding_side=padding_side, require_chat_template=True, causal=True)
    return load_causal_lm(path, dtype=dtype, device=device, tensor_parallel=tensor_parallel), tok


def check_same_vocabulary(tok_a: Any, tok_b: Any, what: str) -> None:
    """DExperts adds logits token by token: the two models must share one vocabulary."""
    if tok_a.get_vocab() != tok_b.get_vocab():
        raise ModelLoadError(f"{what}: the tokenizers differ ({len(tok_a)} vs {len(tok_b)} tokens); DExperts needs one vocabulary")
