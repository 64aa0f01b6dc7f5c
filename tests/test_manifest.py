"""The committed checkpoints agree with checkpoints/manifest.json and with the registered recipes.

- every manifest entry's file exists and its sha256 matches;
- every .pt file under checkpoints/ has an entry;
- every registered recipe has a checkpoint for the default data (sinusoid recipes ``NAME.pt``,
  character recipes ``NAME-omniglot-minimal.pt``);
- each entry's command names its recipe, and its recorded config equals the recipe's ``describe()``;
- each checkpoint loads into its recipe's network;
- ``load_pretrained`` refuses, with a clear message, a file that does not match the manifest.

These read files only (no training, no data generation): a few seconds in all.
"""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from lecture_utils import pretrained
from lecture_utils.checkpoints import REPO_CHECKPOINTS, CheckpointStore, current_store, load_checkpoint, sha256_of
from lecture_utils.pretrained import RECIPES

CHECKPOINTS = REPO_CHECKPOINTS  # the committed files, whatever store a test points to
MANIFEST = CheckpointStore(CHECKPOINTS).read_manifest()
DEFAULT_DATA = "omniglot-minimal"  # the Omniglot archives shipped in data/omniglot: what every machine and CI has


def expected_file(recipe, data: str = DEFAULT_DATA) -> str:
    return f"{recipe.name}.pt" if recipe.family == "sinusoid" else f"{recipe.name}-{data}.pt"


def recipe_of(entry: dict):
    name = entry.get("recipe", {}).get("name")
    return RECIPES.get(name)


def as_json(value):
    """What the manifest stores: the JSON round trip (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))


def test_manifest_is_a_json_object_of_pt_files():
    assert isinstance(MANIFEST, dict)
    for name, entry in MANIFEST.items():
        assert name.endswith(".pt") and "/" not in name, f"manifest key {name!r} is not a file in checkpoints/"
        for key in ("sha256", "recipe", "command", "score", "device", "minutes", "data"):
            assert key in entry, f"{name}: manifest entry lacks {key!r}"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_entry_file_exists_and_checksum_matches(name):
    path = CHECKPOINTS / name
    assert path.exists(), f"{name} is in checkpoints/manifest.json but the file is missing"
    assert sha256_of(path) == MANIFEST[name]["sha256"], (
        f"{name}: sha256 differs from the manifest; retrain it with `{MANIFEST[name]['command']}` "
        "(which records the new checksum) instead of copying weights in")


def test_every_checkpoint_file_has_an_entry():
    files = sorted(p.name for p in CHECKPOINTS.glob("*.pt"))
    orphans = [f for f in files if f not in MANIFEST]
    assert not orphans, (f"checkpoints without a manifest entry: {orphans}; create them with "
                         "`python -m lecture_utils.retrain NAME` (it records the entry)")


def test_every_recipe_has_a_checkpoint_for_the_default_data():
    # Other authors add recipes and train them; until each is trained this fails by design.
    missing = [f"{expected_file(r)} (recipe {name}, notebook {r.notebook})"
               for name, r in sorted(RECIPES.items()) if not (CHECKPOINTS / expected_file(r)).exists()]
    assert not missing, ("registered recipes without a committed checkpoint: " + "; ".join(missing)
                         + ". Train each with `python -m lecture_utils.retrain NAME`.")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_entry_names_its_recipe_and_matches_its_config(name):
    entry = MANIFEST[name]
    recipe = recipe_of(entry)
    assert recipe is not None, (f"{name}: its recipe {entry['recipe'].get('name')!r} is not registered in "
                                "lecture_utils/recipes.py (stale checkpoint?)")
    assert name == expected_file(recipe, entry["data"]), f"{name}: expected the file name {expected_file(recipe, entry['data'])}"
    words = shlex.split(entry["command"])
    assert words[:3] == ["python", "-m", "lecture_utils.retrain"] and recipe.name in words, (
        f"{name}: command {entry['command']!r} does not retrain recipe {recipe.name!r}")
    assert entry["recipe"] == as_json(recipe.describe()), (
        f"{name}: the recorded config differs from the registered recipe {recipe.name!r}: the recipe changed "
        f"after training; retrain with `python -m lecture_utils.retrain {recipe.name}`.\n"
        f"recorded:   {entry['recipe']}\nregistered: {as_json(recipe.describe())}")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_checkpoint_loads_into_its_recipe_network(name):
    recipe = recipe_of(MANIFEST[name])
    if recipe is None:
        pytest.skip("no registered recipe (reported by the test above)")
    if not (CHECKPOINTS / name).exists():
        pytest.skip("file missing (reported by the checksum test)")
    load_checkpoint(CHECKPOINTS / name, recipe.build(), "cpu")  # raises on a missing or misshapen weight


def test_entry_scores_are_finite_numbers():
    for name, entry in MANIFEST.items():
        score = entry["score"]
        assert score["metric"] in ("query_mse", "query_accuracy"), name
        assert score["mean"] == score["mean"] and score["ci95"] >= 0, f"{name}: score {score}"
        assert score["tasks"] >= 2 and entry["minutes"] >= 0, name


# --- load_pretrained on a temporary copy ------------------------------------------------------

def _sine_recipe():
    return next((r for r in RECIPES.values() if r.family == "sinusoid"), None) or pytest.skip("no sinusoid recipe")


def _save_recorded(folder: Path, recipe) -> Path:
    """A checkpoint of an untrained network, recorded in the temporary manifest as training would."""
    from lecture_utils.checkpoints import save_checkpoint

    path = folder / f"{recipe.name}.pt"
    source = CHECKPOINTS / path.name
    if source.exists():  # a copy of the committed file
        shutil.copy(source, path)
    else:
        save_checkpoint(path, recipe.build(), {"name": recipe.name})
    current_store().record(path.name, {"recipe": recipe.describe(), "data": "sinusoid", "score": {},
                                       "command": f"python -m lecture_utils.retrain {recipe.name}",
                                       "device": "cpu", "minutes": 0.0})
    return path


def test_load_pretrained_loads_a_matching_copy(tmp_checkpoints):
    recipe = _sine_recipe()
    _save_recorded(tmp_checkpoints, recipe)
    model, entry = pretrained.load_pretrained(recipe.name, device="cpu")
    assert entry["command"].endswith(recipe.name)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_load_pretrained_rejects_a_changed_file(tmp_checkpoints):
    recipe = _sine_recipe()
    path = _save_recorded(tmp_checkpoints, recipe)
    with open(path, "ab") as handle:
        handle.write(b"\0")  # one byte more: a different checksum
    with pytest.raises(RuntimeError) as err:
        pretrained.load_pretrained(recipe.name, device="cpu")
    message = str(err.value)
    assert path.name in message and "checkpoints/manifest.json" in message and "does not match" in message
    assert "retrain" in message and recipe.name in message


def test_load_pretrained_rejects_a_file_missing_from_the_manifest(tmp_checkpoints):
    recipe = _sine_recipe()
    path = _save_recorded(tmp_checkpoints, recipe)
    (tmp_checkpoints / "manifest.json").write_text("{}\n")
    with pytest.raises(RuntimeError, match="does not match .*checkpoints/manifest.json") as err:
        pretrained.load_pretrained(recipe.name, device="cpu")
    assert path.name in str(err.value)
