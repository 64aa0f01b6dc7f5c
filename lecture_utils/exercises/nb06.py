"""Self-checks for notebook 06 (learned step sizes, a closed-form head, implicit MAML; notes: 「문제점과 대안」).

1. ``check_ridge_head``: a function ``ridge_head(features, targets, lam)`` that returns the ridge
   regression weights by the n×n (Woodbury) solve. Called on problems of the check's own, with
   ``torch.linalg.solve`` and ``torch.linalg.inv`` watched: the d×d system gives the same numbers and
   does not pass, since the exercise is the form whose size does not grow with the features.
2. ``check_conjugate_gradient``: a function ``cg(matvec, b, steps)``, called on random symmetric
   positive definite systems for 1 to 6 steps and compared with conjugate gradient step by step (a
   direct solve is right at every step count and does not pass; neither does steepest descent); it
   must use ``matvec`` once per step, and ``lecture_utils.imaml.conjugate_gradient`` is unavailable.
3. ``check_implicit_meta_gradient``: a function ``implicit_meta_gradient(hessian, query_grad, lam)``,
   called on quadratic support losses where the inner solution has a closed form, against the gradient
   autograd takes through that solution.

Each ``check_*`` prints one line, "Correct: ..." or "Not yet: ...", and returns None.
"""
from __future__ import annotations

import torch

from lecture_utils.exercises import call_student, unavailable, verdict
from lecture_utils.imaml import conjugate_gradient

__all__ = ["check_ridge_head", "check_conjugate_gradient", "check_implicit_meta_gradient"]


def _tensor_answer(got, want: torch.Tensor, name: str) -> bool:
    """True when ``got`` is a tensor of ``want``'s shape; else print a "Not yet" hint and return False."""
    if got is None:
        verdict(False, "", f"{name} returned None: fill in the TODO.")
        return False
    if not torch.is_tensor(got) or got.shape != want.shape:
        shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
        verdict(False, "", f"{name} should return a tensor of shape {tuple(want.shape)}, got {shape}.")
        return False
    return True


# --- Exercise 1: the ridge head by the n×n solve ---------------------------------------------------

def _ridge_problems():
    """(features [n, d], one-hot targets [n, N], λ): more features than examples, as in a 1-shot task."""
    g = torch.Generator().manual_seed(6)
    problems = []
    for n, d, n_way, lam in ((5, 32, 5, 0.7), (10, 64, 5, 2.0), (6, 40, 3, 0.05)):
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        y = torch.nn.functional.one_hot(torch.arange(n) % n_way, n_way).double()
        problems.append((x, y, lam))
    return problems


def check_ridge_head(ridge_head) -> None:
    """``ridge_head(features, targets, lam)`` must return W = Xᵀ(XXᵀ + λI)⁻¹Y, solving the n×n system."""
    if not callable(ridge_head):
        verdict(False, "", "define ridge_head(features, targets, lam) (replace the None).")
        return
    for x, y, lam in _ridge_problems():
        n, d = x.shape
        want = torch.linalg.solve(x.T @ x + lam * torch.eye(d, dtype=x.dtype), x.T @ y)   # the d×d form
        sizes = []
        solve, inv = torch.linalg.solve, torch.linalg.inv

        def watched_solve(a, b, *args, **kwargs):
            sizes.append(a.shape[-1])
            return solve(a, b, *args, **kwargs)

        def watched_inv(a, *args, **kwargs):
            sizes.append(a.shape[-1])
            return inv(a, *args, **kwargs)

        with unavailable("lecture_utils.ridge_head.ridge_weights", student=ridge_head):
            torch.linalg.solve, torch.linalg.inv = watched_solve, watched_inv
            try:
                ran, got = call_student(ridge_head, x.clone(), y.clone(), lam, name="ridge_head")
            finally:
                torch.linalg.solve, torch.linalg.inv = solve, inv
        if not ran or not _tensor_answer(got, want, "ridge_head"):
            return
        if not torch.allclose(got.to(want.dtype), want, rtol=1e-6, atol=1e-9):
            if torch.allclose(got.to(want.dtype), x.T @ torch.linalg.solve(x @ x.T, y), rtol=1e-6, atol=1e-9):
                verdict(False, "", "the weights come out without the ridge: add λ·I to the n×n matrix X Xᵀ.")
            else:
                verdict(False, "", f"for {n} examples with {d} features the weights are off: W = Xᵀ (X Xᵀ + λI)⁻¹ Y.")
            return
        if d in sizes:
            verdict(False, "", f"right weights, but by a {d}×{d} system (the features' size): solve the "
                               f"{n}×{n} system (X Xᵀ + λI) a = Y and return Xᵀ a (the Woodbury form).")
            return
        if n not in sizes:
            verdict(False, "", f"solve the {n}×{n} system (X Xᵀ + λI) a = Y with torch.linalg.solve, then return Xᵀ a.")
            return
    verdict(True, "the ridge weights by an n×n solve, right on 3 problems (5 to 10 examples, 32 to 64 features).", "")


# --- Exercise 2: conjugate gradient ------------------------------------------------------------------

def check_conjugate_gradient(cg) -> None:
    """``cg(matvec, b, steps)`` must be ``steps`` steps of conjugate gradient from x = 0."""
    if not callable(cg):
        verdict(False, "", "define cg(matvec, b, steps) (replace the None).")
        return
    g = torch.Generator().manual_seed(9)
    for size in (12, 20):
        m = torch.randn(size, size, generator=g, dtype=torch.float64)
        a = m @ m.T / size + 0.05 * torch.eye(size, dtype=torch.float64)
        b = torch.randn(size, generator=g, dtype=torch.float64)
        for steps in range(1, 7):
            calls = []

            def matvec(v):
                calls.append(1)
                return a @ v

            with unavailable("lecture_utils.imaml.conjugate_gradient", student=cg):
                ran, got = call_student(cg, matvec, b.clone(), steps, name="cg")
            want = conjugate_gradient(lambda v: a @ v, b, steps)          # the package's, after the block
            if not ran or not _tensor_answer(got, want, "cg"):
                return
            if not torch.allclose(got.to(want.dtype), want, rtol=1e-8, atol=1e-10):
                if torch.allclose(got.to(want.dtype), torch.linalg.solve(a, b), rtol=1e-6, atol=1e-8):
                    hint = ("that is the exact solution: CG after a few steps is not exact yet. Take `steps` "
                            "steps of CG from x = 0, using only matvec.")
                else:
                    hint = ("after each step, the new direction is the residual plus (r·r new / r·r old) times the "
                            "old direction; the step length is (r·r) / (p·Ap).")
                verdict(False, "", f"on a {size}×{size} system after {steps} step{'s' if steps > 1 else ''} the "
                                   f"answer differs from conjugate gradient's: {hint}")
                return
            if len(calls) != steps:
                verdict(False, "", f"use matvec exactly once per step (the check counted {len(calls)} calls for "
                                   f"{steps} steps): A is known only through matvec, and each product costs an HVP.")
                return
    verdict(True, "conjugate gradient, right after 1 to 6 steps on two systems, one matvec per step.", "")


# --- Exercise 3: the implicit meta-gradient ----------------------------------------------------------

def _quadratic_problems():
    """(A, c, θ, query target t, λ): support loss ½ϕᵀAϕ − cᵀϕ (A symmetric, H = A), query loss
    ½‖ϕ − t‖², inner solution ϕ*(θ) = (A + λI)⁻¹(c + λθ)."""
    g = torch.Generator().manual_seed(12)
    problems = []
    for size, lam in ((6, 0.8), (9, 3.0), (4, 0.25)):
        m = torch.randn(size, size, generator=g, dtype=torch.float64)
        a = m @ m.T / size
        problems.append((a, *(torch.randn(size, generator=g, dtype=torch.float64) for _ in range(3)), lam))
    return problems


def check_implicit_meta_gradient(implicit_meta_gradient) -> None:
    """``implicit_meta_gradient(hessian, query_grad, lam)`` must return (I + H/λ)⁻¹ ∇L_qry(ϕ), checked
    against autograd through the closed-form inner solution of a quadratic support loss."""
    if not callable(implicit_meta_gradient):
        verdict(False, "", "define implicit_meta_gradient(hessian, query_grad, lam) (replace the None).")
        return
    for a, c, theta, target, lam in _quadratic_problems():
        size = len(c)
        theta = theta.clone().requires_grad_()
        phi = torch.linalg.solve(a + lam * torch.eye(size, dtype=a.dtype), c + lam * theta)   # ϕ*(θ)
        query_loss = 0.5 * ((phi - target) ** 2).sum()
        (want,) = torch.autograd.grad(query_loss, theta)                  # d L_qry(ϕ*(θ)) / dθ
        query_grad = (phi - target).detach()                              # ∇L_qry at ϕ*
        ran, got = call_student(implicit_meta_gradient, a.clone(), query_grad.clone(), lam,
                                name="implicit_meta_gradient")
        if not ran or not _tensor_answer(got, want, "implicit_meta_gradient"):
            return
        got = got.detach().to(want.dtype)
        if torch.allclose(got, want, rtol=1e-6, atol=1e-9):
            continue
        if torch.allclose(got, query_grad, rtol=1e-6, atol=1e-9):
            hint = "that is ∇L_qry(ϕ) alone, the first-order answer: solve (I + H/λ) g = ∇L_qry(ϕ)."
        elif torch.allclose(got * lam, want, rtol=1e-6, atol=1e-9):
            hint = "off by a factor λ: (H + λI)⁻¹ = (1/λ)(I + H/λ)⁻¹."
        else:
            hint = "solve (I + H/λ) g = ∇L_qry(ϕ) for g (torch.linalg.solve; I is torch.eye)."
        verdict(False, "", f"with λ = {lam} the meta-gradient differs from autograd's through the inner solution: {hint}")
        return
    verdict(True, "(I + H/λ)⁻¹ ∇L_qry(ϕ) equals the gradient through the inner solution, on 3 quadratic problems.", "")
