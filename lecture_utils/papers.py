"""Numbers quoted from papers, each written once here with its citation.

The notebooks and ``results/RESULTS.md`` (``scripts/results.py``) quote these beside our own
measurements; ``tests/test_prose_numbers.py`` accepts a number in a notebook's prose that no cell
prints only when it is one of these (at the precision the prose gives it).
"""
from __future__ import annotations

MAML_PAPER = "Finn, Abbeel, Levine (2017), MAML, Table 1"
REPTILE_PAPER = "Nichol, Achiam, Schulman (2018), Reptile, Omniglot table"
ANIL_PAPER = "Raghu, Raghu, Bengio, Vinyals (2020), Rapid Learning or Feature Reuse?, Omniglot 20-way 1-shot"
META_SGD_PAPER = "Li, Zhou, Chen, Li (2017), Meta-SGD, Omniglot table (one inner step; Conv4-64 with max-pooling)"
IMAML_PAPER = ("Rajeswaran, Finn, Kakade, Levine (2019), Meta-Learning with Implicit Gradients, Table 2, iMAML with a "
               "gradient-descent inner loop (16 steps 5-way, 25 steps 20-way; λ = 2, 5 CG steps)")
# Papers with Omniglot numbers that are not quoted, and why: method -> a sentence.
NOT_QUOTED = {"R2-D2": "Bertinetto, Henriques, Torr, Vedaldi (2019) report Omniglot accuracies too; they are not quoted "
                       "here: we could not check them against the paper's table, and its network is not MAML's Conv4 "
                       "(the authors' code: 96, 192, 384 and 512 channels, or 64 in a narrow variant, trained on "
                       "60-way episodes)."}

# (method, n_way, k_shot) -> (accuracy %, its 95% interval or None, source and note): full Omniglot.
OMNIGLOT = {
    ("MAML", 5, 1): (98.7, 0.4, MAML_PAPER),
    ("MAML", 20, 1): (95.8, 0.3, MAML_PAPER),
    ("first-order MAML", 5, 1): (98.3, 0.5, MAML_PAPER),
    ("first-order MAML", 20, 1): (89.4, 0.5, MAML_PAPER),
    ("Reptile", 5, 1): (97.68, None, REPTILE_PAPER + ", transductive"),
    ("Reptile", 20, 1): (89.43, None, REPTILE_PAPER + ", transductive"),
    ("Meta-SGD", 5, 1): (99.53, 0.26, META_SGD_PAPER),
    ("Meta-SGD", 20, 1): (95.93, 0.38, META_SGD_PAPER),
    ("iMAML", 5, 1): (99.16, 0.35, IMAML_PAPER),
    ("iMAML", 20, 1): (94.46, 0.42, IMAML_PAPER),
}
# The ANIL paper's own runs (not the MAML paper's), Omniglot 20-way 1-shot, accuracy % and 95% interval.
ANIL_OMNIGLOT_20WAY = {"ANIL": (96.2, 0.5, ANIL_PAPER), "MAML": (93.7, 0.7, ANIL_PAPER)}


def cited_numbers() -> list[float]:
    """Every number above (accuracies and intervals), for the prose check."""
    values = []
    for table in (OMNIGLOT, ANIL_OMNIGLOT_20WAY):
        for value, ci, _ in table.values():
            values += [value] + ([ci] if ci is not None else [])
    return values
