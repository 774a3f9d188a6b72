"""Profiles: named sets of settings composed into params.yaml by Hydra, exactly as ``dvc exp run`` does.

``configs/params.yaml`` holds the default settings (the one place each is written: ``big5chat.config`` reads its
fields' defaults from it) and a defaults list; ``configs/profile/<name>.yaml`` overrides them (``default``: the
embedded 135M model on CPU; ``smoke``: tiny random models for tests; ``paper_8b`` / ``paper_70b``: the study's
settings). DVC's Hydra composition is enabled in .dvc/config,
so ``dvc exp run -S profile=paper_8b`` composes that profile into params.yaml before running, and
``python -m big5chat params --profile NAME`` writes the same file with the same code for a plain ``dvc repro``.
"""

from __future__ import annotations

from pathlib import Path

from big5chat import paths


def available() -> list[str]:
    return sorted(p.stem for p in (paths.CONFIGS / "profile").glob("*.yaml"))


def compose(profile: str = "default", overrides: list[str] | None = None, out: Path | None = None) -> Path:
    """Compose configs/ with ``profile=NAME`` and Hydra ``overrides`` into ``out`` (params.yaml by default)."""
    from dvc.utils.hydra import compose_and_dump

    if profile not in available():
        raise ValueError(f"unknown profile {profile!r} (available: {', '.join(available())})")
    target = out or paths.PARAMS_FILE
    tmp = target.with_name(target.name + ".partial")
    compose_and_dump(tmp, str(paths.CONFIGS.resolve()), None, "params", "", [f"profile={profile}", *(overrides or [])])
    tmp.replace(target)
    return target
