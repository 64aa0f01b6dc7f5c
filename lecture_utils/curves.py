"""Learning curves: a recipe's validation score against meta-iterations (notebook 05, Appendix C).

A checkpoint records only where training ended. ``scripts/learning_curves.py`` trains a recipe
again from scratch, exactly as its checkpoint was trained, and scores it every few hundred
meta-iterations with the manifest's own validation score (``pretrained.held_out_score``). The curves
are kept in ``results/learning_curves.json``; ``load_learning_curve(name)`` reads one back::

    curve = load_learning_curve("chars5_reptile")
    curve["step"], curve["mean"], curve["ci95"]     # meta-iterations, validation mean, 95% half-width
"""
from __future__ import annotations

import json
from pathlib import Path

from lecture_utils.pretrained import check_recipe, data_source
from lecture_utils.recipes import recipe

LEARNING_CURVES = Path(__file__).resolve().parents[1] / "results" / "learning_curves.json"


def curve_command(name: str) -> str:
    """The terminal command, run from the repository, that records ``name``'s curve."""
    return f"python scripts/learning_curves.py {name}"


def load_learning_curve(name: str, path: Path | None = None) -> dict:
    """The recorded learning curve of recipe ``name``: ``step``, ``mean`` and ``ci95`` (lists of
    equal length) and how it was recorded. Refuses a curve recorded for another recipe or on
    another data set than the one the notebooks use now, naming the command that records it again."""
    r = recipe(name)
    path = LEARNING_CURVES if path is None else Path(path)
    fix = f"record it with `{curve_command(name)}` from the repository"
    if not path.is_file():
        raise FileNotFoundError(f"no learning curves at {path}: {fix}")
    curves = json.loads(path.read_text(encoding="utf-8"))
    if name not in curves:
        raise KeyError(f"{path.name} has no curve for {name}: {fix}")
    curve = curves[name]
    check_recipe(r, curve, f"the curve of {name} in {path.name}", fix)
    if curve.get("data") != data_source(r):
        raise RuntimeError(f"the curve of {name} in {path.name} was recorded on {curve['data']}, and the "
                           f"notebooks now use {data_source(r)}: {fix}")
    if not len(curve["step"]) == len(curve["mean"]) == len(curve["ci95"]) >= 2:
        raise ValueError(f"the curve of {name} in {path.name} is damaged (its lists differ in length): {fix}")
    return curve
