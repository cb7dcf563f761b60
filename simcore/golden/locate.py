"""Find a golden from what a user names: a shipped model, a golden folder or a model file.

Every command that takes a model (``build``, ``validate``, ``diagnose``, the
pytest plugin) resolves it here, so they all accept the same three things:

- a shipped model name (``mnist_cnn``): the folder under the shipped ``golden/``;
- a golden folder (one holding ``golden.json``, as ``simcore golden create`` writes);
- a model file (``.keras``, int8 ``.tflite`` or ``.onnx``): the golden whose recorded model
  has the file's sha256, looked for in the file's own folder, its ``golden/``
  subfolder, ``./golden/`` and ``.`` of the working directory, and the shipped
  goldens. Matching by content means a renamed or copied model still finds its
  golden, and an edited one never silently uses a stale one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from simcore.api import public
from simcore.errors import GoldenError
from simcore.golden.datasets import GOLDEN_DIR, sha256_file
from simcore.golden.store import HEADER_FILE, Golden, list_models, load_golden_dir

MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")


def _candidates(near: Path | None) -> Iterator[Path]:
    """Golden folders to search, nearest first, each once."""
    roots: list[Path] = []
    if near is not None:
        roots += [near.parent, near.parent / "golden"]
    roots += [Path.cwd() / "golden", Path.cwd(), GOLDEN_DIR]
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        found = [root] if (root / HEADER_FILE).is_file() else []
        found += [p.parent for p in sorted(root.glob(f"*/{HEADER_FILE}"))]
        for folder in found:
            key = folder.resolve()
            if key not in seen:
                seen.add(key)
                yield folder


def _recorded_sha256(folder: Path) -> set[str]:
    """The model sha256s a golden header records (unchecked: load_golden_dir checks)."""
    try:
        header = json.loads((folder / HEADER_FILE).read_text(encoding="utf-8"))
        files = header["files"]
        return {str(files[role]["sha256"]) for role in files if role != "arrays"}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def find_golden_for_model(model: Path | None, sha256: str | None = None) -> Path | None:
    """The golden folder whose model has ``sha256`` (default: the file's), or None."""
    if sha256 is None:
        if model is None or not model.is_file():
            return None
        sha256 = sha256_file(model)
    for folder in _candidates(model):
        if sha256 in _recorded_sha256(folder):
            return folder
    return None


def golden_folder(ref: str | Path) -> Path:
    """The golden folder ``ref`` names (shipped name, golden folder or model file)."""
    path = Path(ref)
    if path.is_dir():
        if not (path / HEADER_FILE).is_file():
            raise GoldenError(
                f"{path} is not a golden folder (no {HEADER_FILE})",
                hint="create one with `simcore golden create MODEL --data DATA`",
            )
        return path
    if path.is_file():
        if path.name == HEADER_FILE:
            return path.parent
        if path.suffix not in MODEL_SUFFIXES:
            raise GoldenError(
                f"{path} is neither a model file (.keras, .tflite, .onnx) nor a golden folder"
            )
        folder = find_golden_for_model(path)
        if folder is None:
            raise GoldenError(
                f"no golden for model file {path} (none with its sha256 next to it, in "
                f"./golden/ or among the shipped ones)",
                hint=f"create one: simcore golden create {path} --data TEST_INPUTS.npy "
                "[--labels LABELS.npy]",
            )
        return folder
    name = str(ref)
    if name in list_models() or (name and (GOLDEN_DIR / name).is_dir() and "/" not in name):
        return GOLDEN_DIR / name  # a shipped folder without its header fails when loaded
    if "/" in name or path.suffix:
        raise GoldenError(f"{name} does not exist", hint="check the path")
    known = ", ".join(list_models()) or "none"
    raise GoldenError(
        f"unknown model {name!r}; shipped: {known}",
        hint="or pass a golden folder or a model file (.keras, .tflite, .onnx)",
    )


@public
def open_golden(ref: str | Path) -> Golden:
    """Load the golden ``ref`` names, refusing a stale or altered one."""
    return load_golden_dir(golden_folder(ref))
