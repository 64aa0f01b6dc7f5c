"""Self-checks for notebook 04 (notes: 「Appendix B: Black-box Meta Learning vs. MAML」).

- ``check_distorted_episode``: a shifted task distorts its support *and* query images, not its labels.
- ``check_headroom``: the share of the in-distribution margin over chance kept at the largest shift.
- ``check_more_steps``: MAML's accuracy after more inner steps at test time, via ``evaluate(steps=...)``.
- ``check_phase_flip``: a phase shifted by pi is a negative amplitude (why phase > pi is out of range).

Each public ``check_*`` prints one line, "Correct: ..." or "Not yet: <hint>", and returns None.
Every expected value is computed from the objects the notebook passes in (its episode, its
accuracies, its model), never from numbers stored here, so the checks hold when the data or the
checkpoints change.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.distortions import distort
from lecture_utils.exercises import as_number, verdict
from lecture_utils.sinusoid import sinusoid

__all__ = ["check_distorted_episode", "check_headroom", "check_more_steps", "check_phase_flip"]


def _is_episode(batch) -> bool:
    return all(hasattr(batch, name) for name in ("x_spt", "y_spt", "x_qry", "y_qry"))


def check_distorted_episode(episode, distorted, shear: float, scale: float) -> None:
    """Exercise 1: both the support and the query images are distorted; the labels stay."""
    if distorted is None:
        verdict(False, "", "distorted is still None: build a TaskBatch from the distorted images.")
        return
    if not _is_episode(distorted):
        verdict(False, "", f"distorted should be a TaskBatch (x_spt, y_spt, x_qry, y_qry), "
                           f"not {type(distorted).__name__}.")
        return
    if distorted.x_spt.shape != episode.x_spt.shape or distorted.x_qry.shape != episode.x_qry.shape:
        verdict(False, "", "the images changed shape: distort() keeps [T, N*K, 1, 28, 28]; "
                           "pass the whole x_spt and x_qry tensors.")
        return
    want_spt = distort(episode.x_spt, shear=shear, scale=scale)
    want_qry = distort(episode.x_qry, shear=shear, scale=scale)
    spt_ok = torch.allclose(distorted.x_spt.cpu(), want_spt.cpu(), atol=1e-5)
    qry_ok = torch.allclose(distorted.x_qry.cpu(), want_qry.cpu(), atol=1e-5)
    labels_ok = (torch.equal(distorted.y_spt.cpu(), episode.y_spt.cpu())
                 and torch.equal(distorted.y_qry.cpu(), episode.y_qry.cpu()))
    if spt_ok and not qry_ok and torch.equal(distorted.x_qry.cpu(), episode.x_qry.cpu()):
        verdict(False, "", "the query images are undistorted: a shifted task shifts its query set too, "
                           "otherwise the learner is asked to match sheared drawings to plain ones.")
    elif qry_ok and not spt_ok and torch.equal(distorted.x_spt.cpu(), episode.x_spt.cpu()):
        verdict(False, "", "the support images are undistorted: distort x_spt as well.")
    elif not (spt_ok and qry_ok):
        verdict(False, "", f"the images do not match distort(images, shear={shear}, scale={scale}): "
                           "check the keyword arguments (shear in radians, scale as a factor).")
    else:
        verdict(labels_ok, "support and query images are sheared and scaled; the labels are unchanged.",
                "the labels changed: a distortion moves pixels, it never relabels a drawing.")


def headroom_kept(accuracy_shifted: float, accuracy_in: float, chance: float) -> float:
    """Share of the in-distribution margin over chance that is left under shift."""
    return (accuracy_shifted - chance) / (accuracy_in - chance)


def check_headroom(maml_kept, blackbox_kept, accuracies: dict, n_way: int = 5) -> None:
    """Exercise 2: (acc at the largest shift - 1/N) / (acc in distribution - 1/N), per learner.

    ``accuracies`` maps a learner's name ("MAML", "black box") to its mean accuracies over the
    shift levels, the in-distribution level first and the largest shift last. Accepts what the
    notebook prints: shares worked out from the table's accuracies (three decimals) and the
    table's "kept" column (two decimals).
    """
    if maml_kept is None or blackbox_kept is None:
        verdict(False, "", "set both maml_kept and blackbox_kept (replace the None).")
        return
    for name in ("MAML", "black box"):
        if name not in accuracies:
            verdict(False, "", f"accuracies has no entry {name!r}: pass the dict the notebook built.")
            return
    got = []
    for value, what in ((maml_kept, "maml_kept"), (blackbox_kept, "blackbox_kept")):
        number = as_number(value, what)
        if number is None:
            return
        got.append(number)
    chance = 1.0 / n_way
    names = ("MAML", "black box")
    want = [headroom_kept(accuracies[n][-1], accuracies[n][0], chance) for n in names]
    # rounding the kept share to 2 decimals, or each accuracy to 3 decimals before dividing
    tolerance = [0.005 + 0.0005 * (1 + abs(w)) / abs(accuracies[n][0] - chance) + 1e-9 for w, n in zip(want, names)]
    if all(abs(g - w) <= t for g, w, t in zip(got, want, tolerance)):
        verdict(True, f"MAML keeps {want[0]:.0%} and the black box {want[1]:.0%} of its margin over chance.", "")
        return
    raw = [accuracies[n][-1] / accuracies[n][0] for n in names]
    if all(abs(g - r) <= t for g, r, t in zip(got, raw, tolerance)):
        verdict(False, "", f"that is the ratio of raw accuracies; subtract chance (1/{n_way}) from both "
                           "accuracies first, since a 5-way guess is already right 20% of the time.")
        return
    which = [n for g, w, t, n in zip(got, want, tolerance, names) if abs(g - w) > t]
    verdict(False, "", f"the share for {' and '.join(which)} is off: (accuracy at the largest shift - 1/{n_way}) / "
                       f"(accuracy with no shift - 1/{n_way}), with that learner's first and last entries.")


def check_more_steps(accuracy, model, algorithm, batches, steps: int = 5) -> None:
    """Exercise 3: MAML's mean query accuracy on ``batches`` after ``steps`` inner steps
    (to the three decimals the notebook prints)."""
    from lecture_utils.training import evaluate  # the same function the notebook uses
    got = as_number(accuracy, "accuracy_5_steps")
    if got is None:
        return
    _, accs = evaluate(model, algorithm, batches, steps=steps)
    want = accs.mean().item()
    if abs(got - want) <= 0.0005 + 1e-9:
        verdict(True, f"after {steps} inner steps MAML gets {want:.3f} on these shifted tasks.", "")
        return
    _, one = evaluate(model, algorithm, batches)
    if abs(got - one.mean().item()) <= 0.0005 + 1e-9:
        verdict(False, "", f"that is the accuracy after the training number of steps; pass steps={steps}.")
    else:
        verdict(False, "", f"got {got:.4f}; evaluate the shifted batches with steps={steps} "
                           "and average the accuracies with .mean().item().")


def check_phase_flip(y_phase_shifted, y_negative_amplitude, x, amplitude: float, phase: float) -> None:
    """Exercise 4: A sin(x - (phase + pi)) equals (-A) sin(x - phase)."""
    if y_phase_shifted is None or y_negative_amplitude is None:
        verdict(False, "", "set both y_phase_shifted and y_negative_amplitude (replace the None).")
        return
    want = sinusoid(x, amplitude, phase + math.pi)
    for value, what in ((y_phase_shifted, "y_phase_shifted"), (y_negative_amplitude, "y_negative_amplitude")):
        value = torch.as_tensor(value)
        if value.shape != want.shape:
            verdict(False, "", f"{what} has shape {tuple(value.shape)}, expected {tuple(want.shape)}.")
            return
    shifted_ok = torch.allclose(torch.as_tensor(y_phase_shifted).cpu(), want, atol=1e-5)
    negative_ok = torch.allclose(torch.as_tensor(y_negative_amplitude).cpu(),
                                 sinusoid(x, -amplitude, phase), atol=1e-5)
    if not shifted_ok:
        verdict(False, "", "y_phase_shifted should be sinusoid(x, amplitude, phase + math.pi).")
    elif not negative_ok:
        verdict(False, "", "y_negative_amplitude should be sinusoid(x, -amplitude, phase).")
    else:
        verdict(True, "a phase shift of pi is a sign flip of the amplitude: a phase in (pi, 2 pi] means a "
                      "negative amplitude, which meta-training (amplitude 0.1 to 5) never showed.", "")
