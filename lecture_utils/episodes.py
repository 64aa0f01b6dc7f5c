"""N-way K-shot episodes: few-shot classification tasks for MAML (Lecture 4, section 1).

An episode (task) picks N classes, relabels them 0..N-1 in a random order, and draws K support and
Q query drawings of each.  Because the labels are reassigned per task, no fixed classifier can
solve the tasks: the model must adapt to each one from its support set, which is what the
inner loop of MAML does.  ``load_characters`` is the data entry point of every notebook.
"""
from __future__ import annotations

import os

import torch

from .characters import SPLITS, CharacterSet, split_characters
from .glyphs import make_glyphs
from .omniglot import OMNIGLOT_ENV, load_omniglot
from .tasks import TaskBatch, check_count, check_cpu_generator

GLYPH_CHARACTERS = 400  # embedded default: 400 characters x 4 rotations = 1600 classes
SPLIT_FRACTIONS = (0.75, 0.10, 0.15)  # of the characters, for (train, val, test)


def load_characters(split: str = "train", root: str | None = None, seed: int = 0, verbose: bool = True,
                    *, cache_dir: str | None = None) -> CharacterSet:
    """The character classes of one split: real Omniglot if asked for, else the embedded glyphs.

    Real Omniglot is opt-in: pass ``root``, or set ``$MAML_LECTURE_OMNIGLOT``, to a folder holding
    the archives.  ``seed`` chooses the split of characters (and the embedded glyph family).
    ``cache_dir`` is where decoded Omniglot is cached (see ``omniglot.load_omniglot``).  With
    ``verbose`` one line says which data is in use.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(map(repr, SPLITS))}")
    root = root or os.environ.get(OMNIGLOT_ENV, "").strip() or None
    if root is None:
        charset = make_glyphs(GLYPH_CHARACTERS, seed=seed)
    else:
        charset = load_omniglot(root, cache_dir=cache_dir)
    charset = split_characters(charset, SPLIT_FRACTIONS, seed)[split]
    if verbose:
        print(_describe(charset, split, root))
    return charset


def _describe(charset: CharacterSet, split: str, root: str | None) -> str:
    size = f"{split}: {len(charset)} classes x {charset.drawings} drawings"
    if root is None:
        return (f"Data: embedded glyphs ({size}). For real Omniglot: set {OMNIGLOT_ENV}=/path/to/omniglot "
                f"(see notebooks/00_setup.ipynb).")
    return f"Data: Omniglot from {root} ({size})."


class EpisodeSampler:
    """Draws meta-batches of N-way K-shot episodes from a ``CharacterSet``."""

    def __init__(self, charset: CharacterSet, n_way: int, k_shot: int, k_query: int):
        self.charset = charset
        self.n_way = check_count("n_way", n_way)
        self.k_shot = check_count("k_shot", k_shot)
        self.k_query = check_count("k_query", k_query)
        if n_way > len(charset):
            raise ValueError(f"n_way={n_way} needs {n_way} classes, but this set has {len(charset)}: "
                             f"choose n_way in 1..{len(charset)}")
        if k_shot + k_query > charset.drawings:
            raise ValueError(f"k_shot + k_query = {k_shot} + {k_query} = {k_shot + k_query} drawings per class, "
                             f"but each class has only {charset.drawings}: keep k_shot + k_query <= {charset.drawings}")

    def sample(self, num_tasks: int, generator: torch.Generator, device=None) -> TaskBatch:
        """``num_tasks`` episodes; images [T, N*K or N*Q, 1, 28, 28], labels [T, N*K or N*Q] in 0..N-1.

        Every class appears K times in the support set and Q times in the query set, and the
        examples come in random order.  All draws use the CPU ``generator``; the batch is then
        moved to ``device``, so a seed gives the same episodes on every device.
        """
        check_count("num_tasks", num_tasks)
        check_cpu_generator(generator)
        n, k, q, d = self.n_way, self.k_shot, self.k_query, self.charset.drawings
        classes = _permutations((num_tasks, len(self.charset)), generator)[:, :n]  # label i -> class classes[:, i]
        drawings = _permutations((num_tasks, n, d), generator)[..., :k + q]  # distinct drawings per class
        images = self.charset.images[classes[..., None], drawings]  # [T, N, K+Q, 1, H, W]
        labels = torch.arange(n).repeat_interleave(k + q).view(1, n, k + q).expand(num_tasks, -1, -1)
        x_spt, y_spt = _shuffled(images[:, :, :k], labels[:, :, :k], generator)
        x_qry, y_qry = _shuffled(images[:, :, k:], labels[:, :, k:], generator)
        return TaskBatch(x_spt, y_spt, x_qry, y_qry).to(device)


def _permutations(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Independent random permutations of 0..shape[-1]-1, one per leading index.

    Sorting uniform noise gives a random permutation per row; a stable sort breaks the (rare) ties
    the same way on every machine.
    """
    return torch.rand(shape, generator=generator).argsort(dim=-1, stable=True)


def _shuffled(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
    """Flatten [T, N, M, ...] per-class examples to [T, N*M, ...] and shuffle their order per task."""
    num_tasks, n, m = labels.shape
    order = _permutations((num_tasks, n * m), generator)
    tasks = torch.arange(num_tasks)[:, None]
    return images.reshape(num_tasks, n * m, *images.shape[3:])[tasks, order], labels.reshape(num_tasks, n * m)[tasks, order]
