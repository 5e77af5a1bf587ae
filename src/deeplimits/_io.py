"""Atomic file writes and safetensors storage.

Every file is first written to a temporary name in the same folder and then
moved into place with :func:`os.replace`, which is atomic on POSIX and Windows
file systems. An interrupted run therefore leaves either the old file or the
new one, never a partial file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor


def _atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    return _atomic_write(path, write)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_figure(
    figure: Any, path: str | os.PathLike[str], *, dpi: int = 120
) -> Path:
    """Save a matplotlib figure as PNG to ``path`` atomically, tightly cropped."""

    def write(temporary: str) -> None:
        figure.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight")

    return _atomic_write(path, write)


def save_tensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, Tensor],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save named tensors to a safetensors file atomically.

    Tensors are detached, moved to the CPU and made contiguous first. Metadata
    values must be strings, as the safetensors format requires.
    """
    prepared = {
        name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()
    }
    meta = dict(metadata or {})
    for key, value in meta.items():
        if not isinstance(value, str):
            raise TypeError(
                f"metadata[{key!r}] must be a str for safetensors, got "
                f"{type(value).__name__}. Convert it with str() or json.dumps()."
            )

    def write(temporary: str) -> None:
        save_file(prepared, temporary, metadata=meta)

    return _atomic_write(path, write)


def load_tensors(
    path: str | os.PathLike[str], *, device: str | torch.device | None = None
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Load the tensors and the string metadata of a safetensors file."""
    from safetensors import SafetensorError, safe_open

    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"No safetensors file at {str(source)!r}.")
    try:
        tensors = load_file(str(source), device=str(device) if device else "cpu")
        with safe_open(str(source), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except SafetensorError as error:
        raise ValueError(
            f"{str(source)!r} is not a readable safetensors file ({error}). "
            "Check the path, or write the file again with ResNet.save."
        ) from error
    return tensors, metadata
