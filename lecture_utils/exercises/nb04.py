"""Self-checks for notebook 04 (notes: 「Appendix B: Black-box Meta Learning vs. MAML」).

- ``check_distorted_episode``: a function that distorts a task's support *and* query images, not its
  labels; called on episodes, shears and scales of the check's own, while the package's
  ``distort_episodes`` (which does exactly that) is unavailable.
- ``check_headroom``: a function giving the share of the in-distribution margin over chance kept at
  the largest shift; called on accuracies and numbers of classes of the check's own (the notebook
  prints the 5-way shares in its table), then on the notebook's.
- ``check_more_steps``: MAML's accuracy after more inner steps at test time, via ``evaluate(steps=...)``.
- ``check_phase_flip``: a function computing A sin(x - (phase + pi)) and (-A) sin(x - phase), each with
  its own ``sinusoid`` call (the calls are recorded, so one curve copied into the other does not
  pass); called on amplitudes, phases and points of the check's own.

Each public ``check_*`` prints one line, "Correct: ..." or "Not yet: <hint>", and returns None.
Every expected value is computed from the objects the notebook passes in (its accuracies, its
model) or from inputs the check draws, never from numbers stored here, so the checks hold when the
data or the checkpoints change.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.distortions import distort
from lecture_utils.exercises import as_number, call_student, student_number, swapped, unavailable, verdict
from lecture_utils.sinusoid import sinusoid
from lecture_utils.tasks import TaskBatch

__all__ = ["check_distorted_episode", "check_headroom", "check_more_steps", "check_phase_flip"]


def _is_episode(batch) -> bool:
    return all(hasattr(batch, name) for name in ("x_spt", "y_spt", "x_qry", "y_qry"))


# --- Exercise 1: distort a task, not just its support set ---------------------------------------------

def _episodes():
    """(episode, shear, scale): random 'drawings' of the check's own, the exercise's shift first."""
    g = torch.Generator().manual_seed(40)
    made_up = []
    for n_tasks, n_way, k_query, shear, scale in ((1, 5, 3, 0.6, 0.7), (2, 3, 2, -0.35, 1.2), (1, 4, 1, 1.0, 0.5)):
        labels = lambda k: torch.arange(n_way).repeat(k).expand(n_tasks, -1).clone()
        images = lambda k: (torch.rand(n_tasks, n_way * k, 1, 28, 28, generator=g) > 0.8).float()
        made_up.append((TaskBatch(images(1), labels(1), images(k_query), labels(k_query)), shear, scale))
    return made_up


def check_distorted_episode(distort_task) -> None:
    """Exercise 1: ``distort_task(episode, shear, scale)`` -> a TaskBatch whose support and query images
    are ``distort(images, shear=shear, scale=scale)`` and whose labels are the episode's."""
    if not callable(distort_task):
        verdict(False, "", "distort_task should be a function of (episode, shear, scale): the check calls it on "
                           "episodes of its own. Fill in the TODO.")
        return
    for episode, shear, scale in _episodes():
        want_spt = distort(episode.x_spt, shear=shear, scale=scale)
        want_qry = distort(episode.x_qry, shear=shear, scale=scale)
        with unavailable("lecture_utils.widgets.shift.distort_episodes", student=distort_task):
            ran, distorted = call_student(distort_task, TaskBatch(*(t.clone() for t in episode)), shear, scale,
                                          name="distort_task")
        if not ran:
            return
        if distorted is None:
            verdict(False, "", "distort_task returned None: return a TaskBatch built from the distorted images.")
            return
        if not _is_episode(distorted):
            verdict(False, "", f"distort_task should return a TaskBatch (x_spt, y_spt, x_qry, y_qry), "
                               f"not {type(distorted).__name__}.")
            return
        if distorted.x_spt.shape != episode.x_spt.shape or distorted.x_qry.shape != episode.x_qry.shape:
            verdict(False, "", "the images changed shape: distort() keeps [T, N*K, 1, 28, 28]; "
                               "pass the whole x_spt and x_qry tensors.")
            return
        spt_ok = torch.allclose(distorted.x_spt.cpu(), want_spt, atol=1e-5)
        qry_ok = torch.allclose(distorted.x_qry.cpu(), want_qry, atol=1e-5)
        labels_ok = (torch.equal(distorted.y_spt.cpu(), episode.y_spt) and torch.equal(distorted.y_qry.cpu(), episode.y_qry))
        if spt_ok and not qry_ok and torch.equal(distorted.x_qry.cpu(), episode.x_qry):
            verdict(False, "", "the query images are undistorted: a shifted task shifts its query set too, "
                               "otherwise the learner is asked to match sheared drawings to plain ones.")
        elif qry_ok and not spt_ok and torch.equal(distorted.x_spt.cpu(), episode.x_spt):
            verdict(False, "", "the support images are undistorted: distort x_spt as well.")
        elif not (spt_ok and qry_ok):
            verdict(False, "", f"the images do not match distort(images, shear={shear}, scale={scale}): use the "
                               "shear and scale passed in, as keyword arguments (shear in radians, scale as a factor).")
        elif not labels_ok:
            verdict(False, "", "the labels changed: a distortion moves pixels, it never relabels a drawing.")
        else:
            continue
        return
    verdict(True, "support and query images are sheared and scaled, the labels unchanged, on 3 episodes and "
                  "shifts.", "")


# --- Exercise 2: how much of its margin over chance does each learner keep? ---------------------------

def _headroom_kept(accuracies, n_way: int) -> float:
    """Share of the in-distribution margin over chance (1/n_way) left at the largest shift."""
    chance = 1.0 / n_way
    return (accuracies[-1] - chance) / (accuracies[0] - chance)


def _made_up_accuracies():
    """(mean accuracies, no shift first, largest last; number of classes) of the check's own."""
    g = torch.Generator().manual_seed(41)
    made_up = []
    for n_levels, n_way in ((3, 20), (5, 2), (4, 5)):
        chance = 1 / n_way
        levels = torch.sort(chance + (1 - chance) * torch.rand(n_levels, generator=g), descending=True).values
        made_up.append((levels.tolist(), n_way))
    return made_up


def check_headroom(kept_share, accuracies: dict, n_way: int = 5) -> None:
    """Exercise 2: ``kept_share(accuracies, n_way)`` -> (acc at the largest shift - 1/n_way) /
    (acc with no shift - 1/n_way), for one learner's mean accuracies (no shift first, largest last).

    Checked on accuracies and class counts of the check's own; then called on each learner of
    ``accuracies`` (name -> its list, as the notebook's ``shear_means``) with ``n_way`` for the message.
    """
    if not callable(kept_share):
        verdict(False, "", "kept_share should be a function of (accuracies, n_way): the check calls it on "
                           "accuracies of its own, so the shares from the table are not enough. Fill in the TODO.")
        return
    if not isinstance(accuracies, dict) or not accuracies:
        verdict(False, "", "pass the notebook's shear_means (learner name -> mean accuracies) as the second argument.")
        return
    for levels, ways in _made_up_accuracies() + [(list(a), n_way) for a in accuracies.values()]:
        want = _headroom_kept(levels, ways)
        with unavailable("lecture_utils.exercises.nb04._headroom_kept", student=kept_share):
            got = student_number(kept_share, list(levels), ways, name="kept_share",
                                 none_hint="return the share (fill in the TODO).")
        if got is None:
            return
        if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            continue
        given = f"for {len(levels)} accuracies {', '.join(f'{a:.3f}' for a in levels)} of a {ways}-way task"
        if math.isclose(got, levels[-1] / levels[0], rel_tol=1e-9):
            hint = (f"that is the ratio of raw accuracies; subtract chance (1/{ways}) from both first, since a "
                    f"{ways}-way guess is already right {1 / ways:.0%} of the time.")
        elif math.isclose(got, _headroom_kept(levels, 5), rel_tol=1e-9):
            hint = f"chance here is 1/{ways}, not 1/5: use n_way."
        elif math.isclose(got, 1 - want, rel_tol=1e-9):
            hint = "that is the share lost; the exercise asks for the share kept."
        else:
            hint = (f"(accuracies[-1] - 1/n_way) / (accuracies[0] - 1/n_way): the largest shift is the last "
                    "entry, no shift the first.")
        verdict(False, "", f"{given}, kept_share gave {got:.4g} instead of {want:.4g}: {hint}")
        return
    shares = ", ".join(f"{name} keeps {_headroom_kept(list(a), n_way):.0%}" for name, a in accuracies.items())
    verdict(True, f"{shares} of its margin over chance.", "")


def check_more_steps(accuracy, model, algorithm, batches, steps: int = 5) -> None:
    """Exercise 3: MAML's mean query accuracy on ``batches`` after ``steps`` inner steps
    (to the three decimals the notebook prints)."""
    from lecture_utils.training import evaluate  # the same function the notebook uses
    got = as_number(accuracy, "accuracy_5_steps")
    if got is None:
        return
    losses, accs = evaluate(model, algorithm, batches, steps=steps)
    want = accs.mean().item()
    if abs(got - want) <= 0.0005 + 1e-9:
        verdict(True, f"after {steps} inner steps MAML gets {want:.3f} on these shifted tasks.", "")
        return
    _, one = evaluate(model, algorithm, batches)
    if abs(got - one.mean().item()) <= 0.0005 + 1e-9:
        verdict(False, "", f"that is the accuracy after the training number of steps; pass steps={steps}.")
    elif abs(got - 100 * want) <= 0.05 + 1e-9:
        verdict(False, "", "that looks like a percentage: give the accuracy as a fraction, accs.mean().item().")
    elif abs(got - losses.mean().item()) <= 0.0005 + 1e-9:
        verdict(False, "", "that is the mean query loss: evaluate returns (losses, accuracies); average the second.")
    else:
        verdict(False, "", f"got {got:.4f}; evaluate the shifted batches with steps={steps} "
                           "and average the accuracies with .mean().item().")


def _phase_problems():
    """(x, amplitude, phase): points, amplitudes and phases of the check's own."""
    g = torch.Generator().manual_seed(42)
    return [(torch.linspace(-5, 5, 50), 2.0, 0.5),
            (torch.sort(10 * torch.rand(37, generator=g) - 5).values, 3.3, 1.2),
            (torch.linspace(-2, 6, 23), 0.7, 2.5)]


def check_phase_flip(phase_flip_curves) -> None:
    """Exercise 4: ``phase_flip_curves(x, amplitude, phase)`` -> (A sin(x - (phase + pi)), (-A) sin(x - phase)),
    each from its own ``sinusoid`` call: the calls are recorded while the function runs."""
    if not callable(phase_flip_curves):
        verdict(False, "", "phase_flip_curves should be a function of (x, amplitude, phase) that returns the two "
                           "curves. Fill in the TODOs.")
        return
    original = sinusoid
    for x, amplitude, phase in _phase_problems():
        calls = []  # (amplitude, phase, the curve returned)

        def recorded(x, amplitude, phase):
            curve = original(x, amplitude, phase)
            calls.append((amplitude, phase, curve))
            return curve

        with swapped({"lecture_utils.sinusoid.sinusoid": recorded}, student=phase_flip_curves):
            ran, got = call_student(phase_flip_curves, x.clone(), amplitude, phase, name="phase_flip_curves")
        if not ran:
            return
        if isinstance(got, tuple) and len(got) == 2 and any(c is None for c in got):
            verdict(False, "", "y_phase_shifted or y_negative_amplitude is still None: fill in the TODOs.")
            return
        if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(c, torch.Tensor) for c in got)):
            verdict(False, "", "return the two curves: return y_phase_shifted, y_negative_amplitude.")
            return
        for curve, amp, ph, what, how in (
                (got[0], amplitude, phase + math.pi, "y_phase_shifted", "sinusoid(x, amplitude, phase + math.pi)"),
                (got[1], -amplitude, phase, "y_negative_amplitude", "sinusoid(x, -amplitude, phase)")):
            if curve.shape != x.shape:
                verdict(False, "", f"{what} has shape {tuple(curve.shape)}, expected {tuple(x.shape)}: compute it on x.")
                return
            if not torch.allclose(curve.detach().cpu(), original(x, amp, ph), atol=1e-5):
                verdict(False, "", f"{what} should be {how}, with the x, amplitude and phase passed in "
                                   f"(the check tried amplitude {amplitude}, phase {phase}).")
                return
            made = next(((a, p) for a, p, c in calls if c is curve), None)
            if made is None or not (math.isclose(float(made[0]), amp, abs_tol=1e-6)
                                    and math.isclose(math.remainder(float(made[1]) - ph, 2 * math.pi), 0, abs_tol=1e-6)):
                verdict(False, "", f"{what} has the right values but is not what {how} returned: compute each "
                                   "curve with its own sinusoid call, as written. The point is that two different "
                                   "calls give the same curve; a copy, or a negated curve, shows nothing.")
                return
    verdict(True, "a phase shift of pi is a sign flip of the amplitude: a phase in (pi, 2 pi] means a "
                  "negative amplitude, which meta-training (amplitude 0.1 to 5) never showed.", "")
