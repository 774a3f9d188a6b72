"""Shared fixtures: the shared reference data (skip when absent), tiny models, copies of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from big5chat import paths

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not paths.SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared reference data at {paths.SHARED_DATA} (absent here)")
    return paths.SHARED_DATA


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tiny-llama and tiny-bert materialized once per session: {'base': dir, 'encoder': dir}."""
    from big5chat.config import ModelSpec
    from big5chat.models.materialize import materialize

    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "base": _materialized(materialize, ModelSpec("tiny", "tiny-llama"), root / "base", "base"),
        "encoder": _materialized(materialize, ModelSpec("tiny", "tiny-bert"), root / "encoder", "encoder"),
    }


def _materialized(fn, spec, out, role) -> Path:  # type: ignore[no-untyped-def]
    fn(spec, out, role)
    return out


def project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files of the working tree (what a commit would hold)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=paths.ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return [f for f in out.split("\0") if f and (paths.ROOT / f).is_file()]


def copy_project(dest: Path) -> Path:
    """A fresh copy of the project as a git repository with one commit (DVC needs git)."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(paths.ROOT / rel, target)
    # Stage outputs of this checkout must not leak into the copy.
    for rel in ("dvc.lock",):
        (dest / rel).unlink(missing_ok=True)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=dest, check=True)
    return dest


def project_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env.pop("BIG5CHAT_ROOT", None)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["HF_HUB_OFFLINE"] = "1"
    env["DVC_NO_ANALYTICS"] = "1"
    env.update(extra or {})
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env or project_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")
