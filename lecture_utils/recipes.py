"""The registry of trained models: one ``Recipe`` per checkpoint the notebooks load.

A recipe is everything needed to train that checkpoint again, and nothing else: the network,
the algorithm (with its inner step size α and number of inner steps), the task family, the
episode shape and the training budget. Naming a recipe builds nothing and loads no data;
``pretrained.py`` loads, trains and records them.

Character models train on Omniglot (the minimal splits shipped in ``data/omniglot/`` unless a
full download is configured), with a Conv4 of 32 channels and 3 query images per class so that
CPU training takes minutes; the MAML paper uses 64 channels and tens of thousands of steps.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from lecture_utils.blackbox import BlackBox, BlackBoxLearner
from lecture_utils.imaml import IMAML
from lecture_utils.maml import MAML
from lecture_utils.meta_sgd import MetaSGD
from lecture_utils.models import Conv4, SineMLP
from lecture_utils.reptile import Reptile
from lecture_utils.ridge_head import R2D2, RidgeHeadLearner
from lecture_utils.validation import check_choice, check_count

FAMILIES = ("sinusoid", "characters")


@dataclass(frozen=True)
class Recipe:
    """Everything needed to train one checkpoint again, and nothing else."""

    name: str
    notebook: str
    algorithm: MAML | Reptile | BlackBox | MetaSGD | R2D2 | IMAML
    family: str                 # "sinusoid" or "characters"
    k_shot: int
    k_query: int
    n_way: int = 0              # characters only
    hidden: int = 64            # Conv4 channels (characters) or MLP width (sinusoid)
    meta_batch: int = 25
    iterations: int = 10_000
    meta_lr: float = 1e-3
    seed: int = 0
    eval_tasks: int = 500

    def __post_init__(self):
        check_choice(self.family, FAMILIES, "task family")
        if self.family == "characters":
            check_count("n_way", self.n_way, minimum=2)

    @property
    def is_blackbox(self) -> bool:
        return isinstance(self.algorithm, BlackBox)

    def build(self) -> nn.Module:
        """The untrained model, seeded: the network, or for Meta-SGD the network with its step
        sizes, for R2-D2 the body with its ridge head, for a black box its learner."""
        torch.manual_seed(self.seed)
        if self.family == "sinusoid":
            net = BlackBoxLearner.for_sinusoid(self.hidden) if self.is_blackbox else SineMLP(self.hidden)
        elif self.is_blackbox:
            net = BlackBoxLearner.for_characters(self.n_way, self.hidden)
        elif isinstance(self.algorithm, R2D2):
            return RidgeHeadLearner.for_characters(self.n_way, self.hidden)
        else:
            net = Conv4(self.n_way, self.hidden)
        return self.algorithm.learner(net) if isinstance(self.algorithm, MetaSGD) else net

    def describe(self) -> dict:
        config = asdict(self)
        config["algorithm"] = {"kind": type(self.algorithm).__name__, **asdict(self.algorithm)}
        return config


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


class UnknownModel(KeyError):
    def __str__(self):
        return self.args[0]


def recipe(name: str) -> Recipe:
    """The recipe called ``name``, or an error listing the known names."""
    if name not in RECIPES:
        raise UnknownModel(f"no pretrained model named {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


# --- Notebook 01: MAML on sinusoids (the MAML paper's settings), and the joint-training
# baseline (no inner step while training: plain regression on all tasks at once).
for _k in (5, 10, 20):
    register(Recipe(f"sine_maml_k{_k}", "01", MAML("regression", inner_lr=0.01, inner_steps=1),
                    "sinusoid", k_shot=_k, k_query=10, hidden=40, iterations=10_000))
register(Recipe("sine_pretrained", "01", MAML("regression", inner_lr=0.01, inner_steps=0),
                "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))

# --- Notebook 03 (§2, 문제점과 대안): first-order and head-only MAML on sinusoids, each trained
# exactly like sine_maml_k10; only the approximation differs.
for _flag, _short in (("first_order", "fomaml"), ("head_only", "anil")):
    register(Recipe(f"sine_{_short}_k10", "03", MAML("regression", inner_lr=0.01, inner_steps=1, **{_flag: True}),
                    "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))

# --- Characters, 5-way 1-shot and 20-way 1-shot (notebooks 03, 04, 05). ``chars5_maml`` is the
# model notebooks 04 and 05 compare against: one inner step of α = 0.4, as in the MAML paper.
# Notebook 03 studies the first-order gap as a function of α: for each difficulty, second- and
# first-order MAML are trained alike (network, tasks, meta-batch, iterations, seed) at
# α = 0.4, 0.1 and 0.03; only ``first_order`` and α differ. The α = 0.4 models carry the plain names.
# 20-way uses 4 tasks per meta-batch and 1 query image per class, so a step costs about as much
# as a 5-way step.
ALPHAS = (0.4, 0.1, 0.03)
CHARS = {5: dict(k_shot=1, k_query=3, n_way=5, hidden=32, meta_batch=8, iterations=3000),
         20: dict(k_shot=1, k_query=1, n_way=20, hidden=32, meta_batch=4, iterations=3000)}


def alpha_suffix(alpha: float) -> str:
    """'' for the lecture's α = 0.4, else '_a0.1' and the like."""
    return "" if alpha == 0.4 else f"_a{alpha:g}"


for _n, _shape in CHARS.items():
    for _alpha in ALPHAS:
        for _first_order, _short in ((False, "maml"), (True, "fomaml")):
            register(Recipe(f"chars{_n}_{_short}{alpha_suffix(_alpha)}", "03",
                            MAML("classification", inner_lr=_alpha, inner_steps=1, first_order=_first_order),
                            "characters", **_shape))
register(Recipe("chars5_anil", "03", MAML("classification", inner_lr=0.4, inner_steps=1, head_only=True),
                "characters", **CHARS[5]))

# --- Notebook 04 (Appendix B): black-box meta-learners trained like the MAML models they are
# compared with: the episode shape, meta-batch, meta-iterations and meta lr of chars5_maml
# (Conv4-32 encoder) and of sine_maml_k10 (encoder 1-40-40).
register(Recipe("chars5_blackbox", "04", BlackBox("classification"), "characters", **CHARS[5]))
register(Recipe("sine_blackbox", "04", BlackBox("regression"), "sinusoid", k_shot=10,
                k_query=10, hidden=40, iterations=10_000))

# --- Notebook 05 (Appendix C): Reptile, trained like the MAML models it is compared with (tasks,
# episode shape, meta-batch, meta-iterations and Adam meta lr of sine_maml_k10 and chars5_maml).
# Reptile needs several inner steps (with one it is joint training): 5 steps of the MAML models'
# inner lr. On sinusoids it adapts on the K = 10 support points. On characters its inner loop sees
# every image of a meta-training task, support and query (4 per class), as MAML's meta-gradient
# does and as the Reptile paper trains (with more shots than it tests with); no support-only
# character model is committed. At test time it adapts on the support image alone.
register(Recipe("sine_reptile", "05", Reptile("regression", inner_lr=0.01, inner_steps=5),
                "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))
register(Recipe("chars5_reptile", "05", Reptile("classification", inner_lr=0.4, inner_steps=5,
                                                adapt_on="support+query"),
                "characters", **CHARS[5]))

# --- Notebook 06 (the lecture's further remedies for §2's two problems), trained like the
# models they are compared with: episode shape, meta-batch, meta-iterations and meta lr of
# sine_maml_k10 and chars5_maml. Meta-SGD starts every step size at the α its MAML row uses
# (0.01 on sinusoids, the lecture's 0.4 on characters, where first-order MAML collapsed) and
# learns it, second and first order. R2-D2 has no inner loop (the head is a ridge solve).
# iMAML takes 5 inner steps of α = 0.1 on the support loss pulled towards θ with the paper's
# λ = 2, and the paper's 5 conjugate-gradient steps for its meta-gradient (the paper takes 16 inner
# steps; 5 keep its training time near 3× MAML's here). In 100-iteration probes α = 0.4 trained
# poorly (validation accuracy 0.27 with λ = 2, 0.36 with λ = 1, against 0.66 for α = 0.1). This model
# stays near its 100-iteration accuracy: its 5 inner steps do not solve the inner problem, which the
# implicit meta-gradient assumes (notebook 06 measures it). ``chars5_imaml_10steps`` takes 10 smaller
# steps (α = 0.03), which get closer to the inner solution at the start of training; it ends lower.
register(Recipe("sine_metasgd_k10", "06", MetaSGD("regression", init_lr=0.01, inner_steps=1),
                "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))
for _first_order, _short in ((False, "metasgd"), (True, "fometasgd")):
    register(Recipe(f"chars5_{_short}", "06", MetaSGD("classification", init_lr=0.4, inner_steps=1,
                                                      first_order=_first_order),
                    "characters", **CHARS[5]))
register(Recipe("chars5_r2d2", "06", R2D2(), "characters", **CHARS[5]))
register(Recipe("chars5_imaml", "06", IMAML("classification", inner_lr=0.1, inner_steps=5, lam=2.0, cg_steps=5),
                "characters", **CHARS[5]))
register(Recipe("chars5_imaml_10steps", "06", IMAML("classification", inner_lr=0.03, inner_steps=10, lam=2.0,
                                                    cg_steps=5), "characters", **CHARS[5]))
