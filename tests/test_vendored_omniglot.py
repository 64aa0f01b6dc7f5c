"""The Omniglot archives shipped in data/omniglot/: the default data of every character notebook
(the default, offline data set). Checksums, the de-duplicated character count, a split that is
disjoint by character and bit-identical everywhere (hash), no file written while loading, and
clear errors for a missing, truncated or altered archive."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch

from lecture_utils.characters import character_of
from lecture_utils.episodes import character_source, load_characters
from lecture_utils.omniglot import (ARCHIVE_CHECKSUMS, OMNIGLOT_ENV, VENDORED_ARCHIVES, VENDORED_DIR,
                                    load_vendored_omniglot)

# SHA-256 of the float32 bytes of each split's images, with its class names, under the default seed.
# PNG decoding and Pillow's 8-bit resize are integer arithmetic, so these hold on every machine.
SPLIT_HASHES = {
    "train": "0eb91818c6ac00854ccf3c8304eea24d78258eff878e073a6023374d77b9eb22",
    "val": "776192d4bf0e4e00a4287c8d875b04cc6476719c24571d54f0eb8aa7e12cd6b1",
    "test": "96bd641a1deccb5232bf42c603e0c33a0ee9d66ebeda47d2cace90f4fe59ce4c",
}


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(OMNIGLOT_ENV, raising=False)


def split_hash(charset) -> str:
    digest = hashlib.sha256(charset.images.numpy().tobytes())
    digest.update("\n".join(charset.names).encode())
    return digest.hexdigest()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_shipped_archives_match_their_checksums_and_the_sums_file():
    sums = dict(line.split()[::-1] for line in (VENDORED_DIR / "SHA256SUMS").read_text().splitlines())
    for name in VENDORED_ARCHIVES:
        path = VENDORED_DIR / f"{name}.zip"
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == ARCHIVE_CHECKSUMS[name][1] == sums[path.name]
    assert (VENDORED_DIR / "LICENSE").read_text().startswith("The MIT License")


def test_characters_are_deduplicated_across_the_two_archives():
    charset = load_vendored_omniglot(rotations=False)
    characters = charset.names
    assert len(characters) == len(set(characters)) == 242
    assert len({name.split("/")[0] for name in characters}) == 8
    assert charset.images.shape == (242, 20, 1, 28, 28)
    assert len(load_vendored_omniglot()) == 968  # with the four rotations


def test_split_by_character_sizes_and_bit_identical_hashes(no_env):
    splits = {name: load_characters(name, verbose=False) for name in ("train", "val", "test")}
    characters = {name: {character_of(c) for c in s.names} for name, s in splits.items()}
    assert [len(characters[n]) for n in ("train", "val", "test")] == [182, 24, 36]
    assert not (characters["train"] & characters["val"] or characters["train"] & characters["test"]
                or characters["val"] & characters["test"])
    for name, charset in splits.items():
        assert split_hash(charset) == SPLIT_HASHES[name], name


def test_loading_writes_no_file(no_env, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    repo = VENDORED_DIR.parents[1]
    before = snapshot(VENDORED_DIR)
    load_characters("test", verbose=False)
    assert snapshot(VENDORED_DIR) == before
    assert not (tmp_path / "cache").exists() and not (tmp_path / "home").exists()
    assert not list(repo.glob("data/**/.cache"))
    assert character_source() == "omniglot-minimal"


def copy_archives(tmp_path: Path) -> Path:
    for name in VENDORED_ARCHIVES:
        shutil.copy(VENDORED_DIR / f"{name}.zip", tmp_path / f"{name}.zip")
    return tmp_path


def test_missing_archive_names_the_file_and_how_to_restore_it(tmp_path):
    folder = copy_archives(tmp_path)
    (folder / "images_background_small2.zip").unlink()
    with pytest.raises(FileNotFoundError, match=r"images_background_small2\.zip is missing.*git checkout -- data/omniglot/"):
        load_vendored_omniglot(folder=folder)


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_damaged_archive_names_the_file_the_expected_checksum_and_the_fix(tmp_path, damage):
    folder = copy_archives(tmp_path)
    path = folder / "images_background_small1.zip"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    expected = ARCHIVE_CHECKSUMS["images_background_small1"][1]
    with pytest.raises(ValueError, match=rf"images_background_small1\.zip is truncated or altered.*expected {expected}"
                                         r".*git checkout -- data/omniglot/images_background_small1\.zip"):
        load_vendored_omniglot(folder=folder)
