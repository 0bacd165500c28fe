"""Output files that appear whole or not at all.

A killed inference or export (SIGKILL, a pre-empted node) must not leave a truncated NIfTI, PNG or model file behind
that a later step (``--skip_existing``, an evaluation, a user) takes for a result. Everything here writes to a hidden
temporary sibling with the same extension (so nibabel, PIL and ONNX pick the same format) and renames it onto the
target with ``os.replace``, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monai.data import NibabelWriter, PILWriter

__all__ = ["AtomicNibabelWriter", "AtomicPILWriter", "AtomicWriterMixin", "atomic_folder", "atomic_path",
           "is_partial_output",
           "remove_partial_outputs", "write_json_atomic"]

logger = logging.getLogger(__name__)

PARTIAL_TAG = ".partial"


def _extension(path: Path) -> str:
    return "".join(path.suffixes[-2:]) if path.name.endswith((".nii.gz", ".tar.gz")) else path.suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; on success it is renamed onto ``path``, on any error removed.

    The temporary name is ``.<stem>.partial<pid><ext>``: hidden, with the target's extension.

    >>> with atomic_path("out/case_seg.nii.gz") as tmp:  # doctest: +SKIP
    ...     nib.save(img, tmp)  # out/.case_seg.partial4242.nii.gz, renamed to out/case_seg.nii.gz
    """
    path = Path(path)
    ext = _extension(path)
    stem = path.name[: len(path.name) - len(ext)] if ext else path.name
    tmp = path.with_name(f".{stem}{PARTIAL_TAG}{os.getpid()}{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``final`` to write into, renamed to ``final`` (replacing it) when the block ends
    without error and removed otherwise: the folder appears complete or not at all."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Writes ``obj`` as JSON to ``path`` (parent folders made) through :func:`atomic_path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)  # streamed: a failure half-way leaves only the temporary file
    return path


def is_partial_output(path: str | os.PathLike) -> bool:
    """True for a temporary file of :func:`atomic_path` (left behind only by a killed process)."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL_TAG in name


def remove_partial_outputs(folder: str | os.PathLike) -> list[Path]:
    """Deletes what killed runs left in ``folder`` (not recursive); returns the deleted paths."""
    folder = Path(folder)
    removed = [p for p in folder.iterdir() if p.is_file() and is_partial_output(p)] if folder.is_dir() else []
    for p in removed:
        logger.warning("removing %s: an output cut short by a killed run", p)
        p.unlink()
    return removed


class AtomicWriterMixin:
    """Makes a MONAI :class:`~monai.data.ImageWriter`'s ``write`` atomic (put it first among the bases)."""

    def write(self, filename, verbose: bool = True, **kwargs):  # noqa: ANN001 - MONAI's signature
        with atomic_path(filename) as tmp:
            super().write(str(tmp), verbose=False, **kwargs)
        if verbose:
            logger.info("writing: %s", filename)


class AtomicPILWriter(AtomicWriterMixin, PILWriter):
    """MONAI's :class:`~monai.data.PILWriter`, atomic.

    >>> SaveImaged("pred", writer="transforms.writers.AtomicPILWriter")  # doctest: +SKIP
    """


class AtomicNibabelWriter(AtomicWriterMixin, NibabelWriter):
    """MONAI's :class:`~monai.data.NibabelWriter`, atomic."""

