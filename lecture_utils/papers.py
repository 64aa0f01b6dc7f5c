"""Numbers quoted from papers, each written once here with its citation.

The notebooks and ``results/RESULTS.md`` (``scripts/results.py``) quote these beside our own
measurements; ``tests/test_prose_numbers.py`` accepts a number in a notebook's prose that no cell
prints only when it is one of these (at the precision the prose gives it).
"""
from __future__ import annotations

MAML_PAPER = "Finn, Abbeel, Levine (2017), MAML, Table 1"
REPTILE_PAPER = "Nichol, Achiam, Schulman (2018), Reptile, Omniglot table"
ANIL_PAPER = "Raghu, Raghu, Bengio, Vinyals (2020), Rapid Learning or Feature Reuse?, Omniglot 20-way 1-shot"

# (method, n_way, k_shot) -> (accuracy %, its 95% interval or None, source and note): full Omniglot.
OMNIGLOT = {
    ("MAML", 5, 1): (98.7, 0.4, MAML_PAPER),
    ("MAML", 20, 1): (95.8, 0.3, MAML_PAPER),
    ("first-order MAML", 5, 1): (98.3, 0.5, MAML_PAPER),
    ("first-order MAML", 20, 1): (89.4, 0.5, MAML_PAPER),
    ("Reptile", 5, 1): (97.68, None, REPTILE_PAPER + ", transductive"),
    ("Reptile", 20, 1): (89.43, None, REPTILE_PAPER + ", transductive"),
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
