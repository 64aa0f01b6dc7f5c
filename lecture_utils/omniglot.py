"""Real Omniglot (Lake et al. 2015): the few-shot benchmark of the MAML paper (Lecture 4, section 1)
and of the distortion study (Appendix B).

Omniglot has 1623 handwritten characters from 50 alphabets, each drawn by 20 people.  The official
archives (github.com/brendenlake/omniglot, MIT licence) are ``images_background.zip`` (964
characters), ``images_evaluation.zip`` (659) and the minimal ``images_background_small1.zip`` and
``images_background_small2.zip`` (subsets of the background set that share Latin and Greek).

``load_omniglot`` follows the standard protocol: grayscale 105x105 drawings resized to 28x28 with
an antialiasing filter, ink as 1.0 on a 0.0 background, and rotations by 90, 180 and 270 degrees
as new classes.  PNG decoding and Pillow's 8-bit resize are integer arithmetic, so every image is
bit-identical on every machine.

The two minimal archives ship with the project in ``data/omniglot/`` (MIT licence, see the LICENSE
there): ``load_vendored_omniglot`` checks their SHA-256 sums and decodes them in about a second, with
no cache and no file written.  The full data set (``images_background`` + ``images_evaluation``,
1623 characters) stays a download for paper-scale runs: ``download_omniglot(folder)``, then
``$MAML_LECTURE_OMNIGLOT=folder``.  Decoding it takes several seconds, so it is cached under the
user's cache directory (``~/.cache/maml-lecture``), never beside the data.  A cache that cannot be
written (a read-only home, ``$XDG_CACHE_HOME`` naming a file) costs only the time: one warning, and
the archives are decoded without it.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from lecture_utils.characters import CharacterSet, split_characters, with_rotations
from lecture_utils.files import atomic_write, sha256_of

__all__ = ["ARCHIVES", "ARCHIVE_CHECKSUMS", "DOWNLOAD_URL", "OMNIGLOT_ENV", "IMAGE_SIZE", "VENDORED_DIR",
           "VENDORED_ARCHIVES", "load_vendored_omniglot", "load_omniglot", "download_omniglot",
           "find_archives", "check_archive", "split_characters"]

OMNIGLOT_ENV = "MAML_LECTURE_OMNIGLOT"
DOWNLOAD_URL = "https://github.com/brendenlake/omniglot/raw/master/python/{name}.zip"
ARCHIVES = ("images_background", "images_evaluation", "images_background_small1", "images_background_small2")
ARCHIVE_CHECKSUMS = {  # archive -> (hash algorithm, hex digest) of the official zip file
    # MD5 sums published in torchvision's datasets/omniglot.py (no published SHA-256 was found).
    "images_background": ("md5", "68d2efa1b9178cc56df9314c21c6e718"),
    "images_evaluation": ("md5", "6b91aef0f799c5bb55b94e3f2daec811"),
    # SHA-256 sums of the copies in the project's shared data folder (its SHA256SUMS file).
    "images_background_small1": ("sha256", "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    "images_background_small2": ("sha256", "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
}
IMAGE_SIZE = 28
VENDORED_DIR = Path(__file__).resolve().parents[1] / "data" / "omniglot"
VENDORED_ARCHIVES = ("images_background_small1", "images_background_small2")
_CACHE_FORMAT = 1  # part of the cache key: bump it when the decoded layout changes


def load_vendored_omniglot(rotations: bool = True, folder=None) -> CharacterSet:
    """The two minimal background archives shipped in ``data/omniglot/``: 8 alphabets, 242 distinct
    characters (Greek and Latin are in both archives and are read once), 20 drawings each.

    Each archive's SHA-256 is checked first; a missing, truncated or altered file raises an error
    naming the file, the expected checksum and how to restore it.  Nothing is cached or written.
    """
    folder = VENDORED_DIR if folder is None else Path(folder)
    paths = []
    for name in VENDORED_ARCHIVES:
        path = folder / f"{name}.zip"
        algorithm, expected = ARCHIVE_CHECKSUMS[name]
        restore = (f"Restore it with `git checkout -- data/omniglot/{path.name}` (or copy it from "
                   f"https://github.com/brendenlake/omniglot/tree/master/python).")
        if not path.is_file():
            raise FileNotFoundError(f"the vendored Omniglot archive {path} is missing. {restore}")
        actual = sha256_of(path, algorithm)
        if actual != expected:
            raise ValueError(f"the vendored Omniglot archive {path} is truncated or altered: its {algorithm} "
                             f"is {actual}, expected {expected}. {restore}")
        paths.append(path)
    return _character_set(_decode_checked(tuple(paths)), rotations, source="omniglot-minimal")


@functools.lru_cache(maxsize=2)
def _decode_checked(paths: tuple[Path, ...]) -> dict:
    """Decode archives whose checksums were just verified, once per session (about a second)."""
    return _decode_archives(list(paths))


def load_omniglot(root, archives=None, cache_dir=None, rotations: bool = True) -> CharacterSet:
    """Omniglot characters from the archives (or their extracted folders) in ``root``.

    ``archives`` names which of ``ARCHIVES`` to read; by default every one present.  A character in
    several archives (the small sets are subsets of ``images_background``) is read once.  The decoded
    drawings are cached in ``cache_dir``, by default the user's cache directory
    (``$XDG_CACHE_HOME/maml-lecture`` or ``~/.cache/maml-lecture``); nothing is written into ``root``.
    When the cache cannot be written, a warning says so and the drawings are decoded without it.
    """
    root = Path(root)
    paths = find_archives(root, archives)
    cache_dir = Path(cache_dir) if cache_dir is not None else user_cache_dir()
    cache_file = cache_dir / f"omniglot-{_cache_key(paths)}.pt"
    decoded = _read_cache(cache_file)
    if decoded is None:
        decoded = _decode_archives(paths)
        try:
            atomic_write(cache_file, lambda temporary: torch.save(decoded, temporary))
        except OSError as error:  # a read-only home, a file where the folder should be, a full disk
            warnings.warn(f"cannot write the Omniglot cache {cache_file} ({error.strerror or error}); continuing "
                          "without a cache (set XDG_CACHE_HOME to a writable folder to keep the decoded drawings)",
                          RuntimeWarning, stacklevel=2)
    return _character_set(decoded, rotations, source="omniglot")


def _character_set(decoded: dict, rotations: bool, source: str) -> CharacterSet:
    images = (decoded["images"].float() / 255).unsqueeze(2)  # [C, D, 1, 28, 28], ink = 1.0
    names = decoded["names"]
    if rotations:
        images, names = with_rotations(images, names)
    return CharacterSet(images, names, source=source)


def user_cache_dir() -> Path:
    """Where decoded data sets are cached: ``$XDG_CACHE_HOME/maml-lecture``, else ``~/.cache/maml-lecture``
    (without a home folder, a folder in the system's temporary directory)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    if not base:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no HOME and no user database entry
            base = Path(tempfile.gettempdir())
    return Path(base) / "maml-lecture"


def find_archives(root, archives=None) -> list[Path]:
    """The archive files or extracted folders in ``root``: the ones named, or all of ``ARCHIVES`` present."""
    root = Path(root)
    names = ARCHIVES if archives is None else _check_archive_names(archives)
    found = []
    for name in names:
        candidates = [root / f"{name}.zip", root / name]
        present = [path for path in candidates if path.exists()]
        if present:
            found.append(present[0])
        elif archives is not None:
            raise FileNotFoundError(f"{name}.zip (or its extracted folder {name}/) is not in {root}. "
                                    f"{_how_to_get(root, name)}")
    if not found:
        looked_for = ", ".join(f"{name}.zip" for name in ARCHIVES)
        raise FileNotFoundError(f"No Omniglot archive in {root}: looked for {looked_for} "
                                f"(or their extracted folders). {_how_to_get(root)}")
    return found


def download_omniglot(root, which=("images_background", "images_evaluation"), url: str = DOWNLOAD_URL) -> list[Path]:
    """Download the official archives into ``root`` and check them against ``ARCHIVE_CHECKSUMS``.

    ``url`` is a template with ``{name}`` for the archive name (a mirror may be given).  Each file is
    written to ``<name>.zip.part`` and renamed only once its checksum matches, so an interrupted or
    corrupt download never leaves a ``.zip`` behind.  An archive already present and correct is kept.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in _check_archive_names(which):
        target = root / f"{name}.zip"
        algorithm, expected = ARCHIVE_CHECKSUMS[name]
        if not (target.exists() and sha256_of(target, algorithm) == expected):
            partial = root / f"{name}.zip.part"
            source = url.format(name=name)
            print(f"Downloading {source} ...")
            try:
                with urllib.request.urlopen(source) as response, open(partial, "wb") as file:
                    shutil.copyfileobj(response, file)
                check_archive(partial, name)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        paths.append(target)
    return paths


def check_archive(path, name: str) -> None:
    """Raise a ValueError unless the file at ``path`` is the official archive ``name`` (by checksum)."""
    algorithm, expected = ARCHIVE_CHECKSUMS[_check_archive_names([name])[0]]
    actual = sha256_of(Path(path), algorithm)
    if actual != expected:
        raise ValueError(f"{path} is not the official {name}.zip: its {algorithm} is {actual}, expected "
                         f"{expected}. The download is incomplete or corrupt; run download_omniglot() again.")


def _check_archive_names(names) -> tuple[str, ...]:
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [name for name in names if name not in ARCHIVES]
    if unknown or not names:
        problem = f"unknown Omniglot archive(s) {unknown}" if unknown else "no Omniglot archive named"
        raise ValueError(f"{problem}: choose from {', '.join(ARCHIVES)}")
    return names


def _how_to_get(root: Path, name: str | None = None) -> str:
    which = "" if name is None else f", which=[{name!r}]"
    return (f"Get the archives with lecture_utils.omniglot.download_omniglot({str(root)!r}{which}), "
            f"or unset ${OMNIGLOT_ENV} to use the Omniglot archives shipped in data/omniglot/.")


def _decode_archives(paths: list[Path]) -> dict:
    """Decode every character once: {"images": uint8 [C, D, 28, 28] with ink 255, "names": [C]}."""
    drawings_of = {}
    for path in paths:
        for character, pngs in _read_pngs(path).items():
            drawings_of.setdefault(character, pngs)
    if not drawings_of:
        raise ValueError(f"no drawings (<alphabet>/<character>/<drawing>.png) found in {[str(p) for p in paths]}")
    counts = [len(pngs) for pngs in drawings_of.values()]
    usual = max(set(counts), key=counts.count)
    uneven = {name: len(pngs) for name, pngs in drawings_of.items() if len(pngs) != usual}
    if uneven:
        raise ValueError(f"every character needs the same number of drawings ({usual} for most), but {uneven}. "
                         f"Re-download the archives with download_omniglot().")
    names = sorted(drawings_of)
    images = np.stack([np.stack([_decode_png(png, f"{name}/{file}") for file, png in drawings_of[name]])
                       for name in names])
    return {"images": torch.from_numpy(images), "names": names}


def _read_pngs(path: Path) -> dict[str, list[tuple[str, bytes]]]:
    """The PNG files of each character '<alphabet>/<character>', as (file name, contents) sorted by name."""
    entries = _folder_entries(path) if path.is_dir() else _zip_entries(path)
    characters: dict[str, list[tuple[str, bytes]]] = {}
    for (alphabet, character, file), png in sorted(entries):
        characters.setdefault(f"{alphabet}/{character}", []).append((file, png))
    return characters


def _folder_entries(folder: Path) -> list[tuple[tuple[str, ...], bytes]]:
    return [(file.relative_to(folder).parts, file.read_bytes()) for file in folder.glob("*/*/*.png")]


def _zip_entries(path: Path) -> list[tuple[tuple[str, ...], bytes]]:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = []
            for info in archive.infolist():
                parts = _safe_parts(info.filename, path)
                if info.filename.endswith(".png"):
                    if len(parts) != 4:
                        raise ValueError(f"{path} holds {info.filename!r}, but Omniglot drawings are "
                                         f"<archive>/<alphabet>/<character>/<drawing>.png. {_redownload(path)}")
                    entries.append((parts[1:], archive.read(info)))
            return entries
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ValueError(f"{path} is truncated or corrupt ({error}). {_redownload(path)}") from error


def _safe_parts(member: str, archive: Path) -> tuple[str, ...]:
    """The path parts of a zip entry, refusing one that would land outside the extraction folder."""
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ValueError(f"{archive} holds the entry {member!r}, which would be extracted outside its "
                         f"folder (a zip-slip path); refusing to read it. This is not an official Omniglot "
                         f"archive. {_redownload(archive)}")
    return path.parts


def _decode_png(png: bytes, where: str) -> np.ndarray:
    """A 105x105 Omniglot drawing as a 28x28 uint8 array with ink 255 on a 0 background."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            small = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    except OSError as error:  # PIL's "cannot identify image" and "truncated" errors
        raise ValueError(f"cannot decode the drawing {where}: {error}. Re-download the archives.") from error
    return 255 - np.asarray(small)


def _redownload(path: Path) -> str:
    name = path.name.removesuffix(".zip")
    return (f"Delete it and download it again with "
            f"lecture_utils.omniglot.download_omniglot({str(path.parent)!r}, which=[{name!r}]).")


def _cache_key(paths: list[Path]) -> str:
    """A digest of each archive's name, size and modification time (every file's, for a folder)."""
    key = hashlib.sha256(f"format {_CACHE_FORMAT}, size {IMAGE_SIZE}\n".encode())
    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            stat = file.stat()
            key.update(f"{path.name}/{file.relative_to(path) if path.is_dir() else ''} "
                       f"{stat.st_size} {stat.st_mtime_ns}\n".encode())
    return key.hexdigest()[:24]


def _read_cache(cache_file: Path) -> dict | None:
    """The decoded drawings from the cache, or None when there is none or it is damaged
    (e.g. truncated): then it is removed and the archives are decoded again."""
    if not cache_file.is_file():
        return None
    try:
        decoded = torch.load(cache_file, weights_only=True)
        if isinstance(decoded, dict) and {"images", "names"} <= decoded.keys():
            return decoded
    except Exception:  # a damaged or unreadable cache is never worse than no cache: decode again
        pass
    print(f"The Omniglot cache {cache_file} is damaged; decoding the archives again.")
    try:
        cache_file.unlink(missing_ok=True)
    except OSError:  # a read-only cache folder: the write that follows warns
        pass
    return None
