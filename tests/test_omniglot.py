import io
import os
import shutil
import time
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import torch
from PIL import Image, ImageDraw

from lecture_utils.characters import character_of, split_characters
from lecture_utils.episodes import EpisodeSampler, load_characters
from lecture_utils.omniglot import (ARCHIVES, OMNIGLOT_ENV, check_archive, download_omniglot, find_archives,
                                    load_omniglot)

# The repository sits beside the shared data folder (here /work/main and /work/shared; in CI a clone
# with a copy of shared/ next to it).  $MAML_LECTURE_OMNIGLOT points elsewhere if set.
SHARED_OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
REAL_ROOT = Path(os.environ.get(OMNIGLOT_ENV) or SHARED_OMNIGLOT)


# ---------------------------------------------------------------- synthetic archives (always run)

def drawing_png(character: int, drawing: int) -> bytes:
    """A 105x105 1-bit drawing in Omniglot's format: black ink on white."""
    image = Image.new("1", (105, 105), 1)
    left = 10 + 15 * character + drawing
    ImageDraw.Draw(image).rectangle([left, 20, left + 12, 80], fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_archive(path: Path, characters=("Alpha/character01", "Alpha/character02", "Beta/character01"),
                  drawings: int = 3, extra_entries=()) -> Path:
    name = path.name.removesuffix(".zip")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, character in enumerate(characters):
            for drawing in range(drawings):
                archive.writestr(f"{name}/{character}/{index:04d}_{drawing + 1:02d}.png", drawing_png(index, drawing))
        for entry in extra_entries:
            archive.writestr(entry, drawing_png(0, 0))
    return path


def test_synthetic_archive_follows_the_protocol(tmp_path):
    write_archive(tmp_path / "images_background_small1.zip")
    charset = load_omniglot(tmp_path, cache_dir=tmp_path / "cache")
    assert charset.source == "omniglot" and charset.images.shape == (12, 3, 1, 28, 28)
    assert charset.names[:4] == [f"Alpha/character01/rot{angle:03d}" for angle in (0, 90, 180, 270)]
    upright = charset.images[0, 0, 0]
    assert upright.max() == 1.0 and upright.min() == 0.0 and upright.mean() < 0.3, "ink is 1.0 on a 0.0 background"
    assert upright[:, 3:8].sum() > 0 and upright[:, 20:].sum() == 0, "the bar is drawn where it was, at 28/105 scale"
    assert torch.equal(charset.images[1], charset.images[0].rot90(1, dims=(-2, -1)))


def test_extracted_folder_loads_like_the_zip(tmp_path):
    (tmp_path / "zipped").mkdir()
    archive = write_archive(tmp_path / "zipped" / "images_evaluation.zip")
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "extracted")
    from_zip = load_omniglot(tmp_path / "zipped", cache_dir=tmp_path / "cache")
    from_folder = load_omniglot(tmp_path / "extracted", cache_dir=tmp_path / "cache")
    assert find_archives(tmp_path / "extracted") == [tmp_path / "extracted" / "images_evaluation"]
    assert from_zip.names == from_folder.names and torch.equal(from_zip.images, from_folder.images)


def test_a_character_in_two_archives_is_read_once(tmp_path):
    write_archive(tmp_path / "images_background_small1.zip", characters=("Latin/character01", "Korean/character01"))
    write_archive(tmp_path / "images_background_small2.zip", characters=("Latin/character01", "Greek/character01"))
    charset = load_omniglot(tmp_path, cache_dir=tmp_path / "cache", rotations=False)
    assert charset.names == ["Greek/character01", "Korean/character01", "Latin/character01"]


def test_the_cache_is_one_complete_file_and_follows_the_archive(tmp_path):
    archive = write_archive(tmp_path / "images_background.zip")
    cache = tmp_path / "cache"
    first = load_omniglot(tmp_path, cache_dir=cache, rotations=False)
    assert [path.suffix for path in cache.iterdir()] == [".pt"], "no temporary file is left behind"
    write_archive(archive, characters=("Gamma/character07",), drawings=3)
    os.utime(archive, ns=(1, 1))  # a new size and modification time: a new cache entry
    second = load_omniglot(tmp_path, cache_dir=cache, rotations=False)
    assert first.names != second.names == ["Gamma/character07"]


def test_a_truncated_cache_is_decoded_again(tmp_path, capsys):
    write_archive(tmp_path / "images_background.zip")
    cache = tmp_path / "cache"
    first = load_omniglot(tmp_path, cache_dir=cache, rotations=False)
    (cache_file,) = cache.iterdir()
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # what a full disk or a copy cut short leaves
    again = load_omniglot(tmp_path, cache_dir=cache, rotations=False)
    assert again.names == first.names and torch.equal(again.images, first.images)
    assert "damaged; decoding the archives again" in capsys.readouterr().out
    assert cache_file.stat().st_size > 100, "the cache is written anew"


@pytest.mark.parametrize("unwritable", ["XDG_CACHE_HOME is a file", "read-only HOME", "cache_dir is a file"])
def test_an_unwritable_cache_warns_once_and_loads_the_readable_archives(tmp_path, monkeypatch, read_only,
                                                                       unwritable):
    write_archive(tmp_path / "images_background_small1.zip")
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    cache_dir = None
    if unwritable == "XDG_CACHE_HOME is a file":
        monkeypatch.setenv("XDG_CACHE_HOME", str(a_file))
    elif unwritable == "read-only HOME":
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(read_only(tmp_path / "home")))
    else:
        cache_dir = a_file / "cache"
    with pytest.warns(RuntimeWarning, match="without a cache") as caught:
        charset = load_omniglot(tmp_path, cache_dir=cache_dir, rotations=False)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert charset.images.shape == (3, 3, 1, 28, 28)


def test_missing_archive_names_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No Omniglot archive in .*images_background\.zip, "
                                                r"images_evaluation\.zip.*download_omniglot"):
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache")
    write_archive(tmp_path / "images_background_small1.zip")
    with pytest.raises(FileNotFoundError, match=r"images_evaluation\.zip .* is not in .*which=\['images_evaluation'\]"):
        load_omniglot(tmp_path, archives=["images_evaluation"], cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"unknown Omniglot archive\(s\) \['images_extra'\]: choose from images_background"):
        load_omniglot(tmp_path, archives=["images_extra"], cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("damage", ["truncate", "flip bytes"])
def test_damaged_archive_says_to_download_again_and_caches_nothing(tmp_path, damage):
    archive = write_archive(tmp_path / "images_background.zip")
    data = bytearray(archive.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 3
        data[middle:middle + 64] = bytes(64)
    archive.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"images_background\.zip is truncated or corrupt .*Delete it and download "
                                         r"it again .*download_omniglot\(.*which=\['images_background'\]\)"):
        load_omniglot(tmp_path, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize("entry", ["../evil.png", "images_background/../../evil.png", "/tmp/evil.png",
                                   "images_background\\..\\..\\evil.png"])
def test_zip_slip_entries_are_refused(tmp_path, entry):
    write_archive(tmp_path / "images_background.zip", extra_entries=[entry])
    with pytest.raises(ValueError, match=r"would be extracted outside its folder \(a zip-slip path\)"):
        load_omniglot(tmp_path, cache_dir=tmp_path / "cache")


def test_download_rejects_a_bad_checksum_and_leaves_nothing(tmp_path):
    mirror, target = tmp_path / "mirror", tmp_path / "data"
    mirror.mkdir()
    write_archive(mirror / "images_background_small1.zip")  # not the official file
    with pytest.raises(ValueError, match=r"not the official images_background_small1\.zip: its sha256 is "
                                         r"[0-9a-f]{64}, expected f38eb80f.*run download_omniglot\(\) again"):
        download_omniglot(target, which=["images_background_small1"], url=mirror.as_uri() + "/{name}.zip")
    assert list(target.iterdir()) == [], "neither the .zip nor the .part file is left"
    with pytest.raises(ValueError, match="unknown Omniglot archive"):
        download_omniglot(target, which=["images_everything"])


# ---------------------------------------------------------------- the real archives (skipped when absent)

def archive_characters(root: Path) -> set[str]:
    """'<alphabet>/<character>' of every drawing in the archives and extracted folders, read directly."""
    characters = set()
    for name in ARCHIVES:
        if (root / f"{name}.zip").exists():
            with zipfile.ZipFile(root / f"{name}.zip") as archive:
                characters |= {"/".join(PurePosixPath(entry).parts[1:3])
                               for entry in archive.namelist() if entry.endswith(".png")}
        elif (root / name).is_dir():
            characters |= {"/".join(path.relative_to(root / name).parts[:2]) for path in (root / name).glob("*/*/*.png")}
    return characters


needs_omniglot = pytest.mark.skipif(not archive_characters(REAL_ROOT),
                                    reason=f"no real Omniglot archives in {REAL_ROOT} "
                                           f"(set {OMNIGLOT_ENV} to a folder holding them)")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The real archives loaded once into a fresh cache: (charset, seconds, cache folder)."""
    cache = tmp_path_factory.mktemp("omniglot-cache")
    start = time.perf_counter()
    charset = load_omniglot(REAL_ROOT, cache_dir=cache)
    return charset, time.perf_counter() - start, cache


@needs_omniglot
def test_real_class_count_image_shape_and_range(real):
    charset, seconds, _ = real
    print(f"Omniglot first load ({len(charset)} classes): {seconds:.2f} s")
    assert len(charset) == 4 * len(archive_characters(REAL_ROOT))
    assert charset.images.shape[1:] == (20, 1, 28, 28) and charset.images.dtype == torch.float32
    assert charset.images.min() == 0.0 and charset.images.max() == 1.0
    assert 0.03 < charset.images.mean() < 0.2, "ink (1.0) is the minority on a 0.0 background"
    assert {character_of(name) for name in charset.names} == archive_characters(REAL_ROOT)


@needs_omniglot
def test_real_rotation_classes_are_rotated_drawings(real):
    charset = real[0]
    for k, angle in enumerate((0, 90, 180, 270)):
        assert charset.names[k].endswith(f"/rot{angle:03d}")
        assert torch.equal(charset.images[k], charset.images[0].rot90(k, dims=(-2, -1)))


@needs_omniglot
def test_real_cache_hit_is_fast_and_identical(real):
    charset, _, cache = real
    start = time.perf_counter()
    cached = load_omniglot(REAL_ROOT, cache_dir=cache)
    seconds = time.perf_counter() - start
    print(f"Omniglot cached load: {seconds:.3f} s")
    assert seconds < 1.0
    assert cached.names == charset.names and torch.equal(cached.images, charset.images)


@needs_omniglot
def test_real_split_is_disjoint_by_character(real):
    splits = split_characters(real[0], seed=0)
    characters = {name: {character_of(c) for c in split.names} for name, split in splits.items()}
    assert not (characters["train"] & characters["val"] or characters["train"] & characters["test"]
                or characters["val"] & characters["test"])
    assert set().union(*characters.values()) == archive_characters(REAL_ROOT)
    assert sum(len(split) for split in splits.values()) == len(real[0])


@needs_omniglot
def test_real_episodes_have_the_right_shapes_and_balanced_labels(real):
    batch = EpisodeSampler(real[0], n_way=20, k_shot=1, k_query=5).sample(4, torch.Generator().manual_seed(0))
    assert batch.x_spt.shape == (4, 20, 1, 28, 28) and batch.x_qry.shape == (4, 100, 1, 28, 28)
    for t in range(4):
        assert torch.equal(torch.bincount(batch.y_spt[t], minlength=20), torch.ones(20, dtype=torch.long))
        assert torch.equal(torch.bincount(batch.y_qry[t], minlength=20), torch.full((20,), 5))


@needs_omniglot
def test_load_characters_uses_real_omniglot_when_asked(real, monkeypatch, capsys):
    monkeypatch.setenv(OMNIGLOT_ENV, str(REAL_ROOT))
    train = load_characters("train", cache_dir=real[2])
    assert train.source == "omniglot"
    assert capsys.readouterr().out == (f"Data: Omniglot from {REAL_ROOT} "
                                       f"(train: {len(train) // 4} characters x 4 rotations = {len(train)} classes, 20 drawings each).\n")
    assert train.names == split_characters(real[0], (0.75, 0.10, 0.15), seed=0)["train"].names


@pytest.mark.skipif(not (SHARED_OMNIGLOT / "images_background_small1.zip").exists(),
                    reason=f"the minimal Omniglot archives are not in {SHARED_OMNIGLOT}")
def test_checksum_constants_match_the_official_minimal_archives(tmp_path):
    for name in ("images_background_small1", "images_background_small2"):
        check_archive(SHARED_OMNIGLOT / f"{name}.zip", name)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(SHARED_OMNIGLOT / "images_background_small1.zip", mirror)
    [path] = download_omniglot(tmp_path / "data", which=["images_background_small1"],
                               url=mirror.as_uri() + "/{name}.zip")
    assert path.read_bytes() == (SHARED_OMNIGLOT / "images_background_small1.zip").read_bytes()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["images_background_small1.zip"]
