"""Files written whole or not at all, and their checksums (used by checkpoints and the data cache).

``atomic_write(target, write)`` lets ``write`` fill a temporary file beside ``target`` and then
renames it over ``target`` (``os.replace``): an interrupted write never leaves a half-written
file, and the temporary file is removed on any error. Temporary files are named
``<target name>.<random>.part``; those a killed process left behind are removed by the next
write to the same target.

``why_not_writable(target)`` says, before any long work, why ``target`` could not be written
(a folder, a missing or read-only folder), by creating and removing a file beside it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable


def temporary_beside(target: str | Path) -> Path:
    """A new empty temporary file next to ``target`` (after removing stale ones of it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{target.name}.*.part"):
        stale.unlink(missing_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=".part")
    os.close(handle)
    return Path(name)


def atomic_write(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then move the result over ``target`` in one step."""
    target = Path(target)
    temporary = temporary_beside(target)
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def why_not_writable(target: str | Path) -> str | None:
    """Why the file ``target`` cannot be written whole (None when it can): it is a folder, its
    folder does not exist, or a file cannot be created there (read-only, full, a file in the way)."""
    target = Path(target)
    if target.is_dir():
        return f"{target} is a folder, not a file"
    folder = target.parent
    if not folder.is_dir():
        return f"its folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".write-check-")
    except OSError as error:
        return f"{folder} is not writable ({error.strerror or error})"
    os.close(handle)
    os.unlink(name)
    return None


def sha256_of(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (sha256 unless ``algorithm`` names another hashlib one)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
