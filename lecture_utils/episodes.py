"""N-way K-shot episodes: few-shot classification tasks for MAML (Lecture 4, section 1).

An episode (task) picks N classes, relabels them 0..N-1 in a random order, and draws K support and
Q query drawings of each.  Because the labels are reassigned per task, no fixed classifier can
solve the tasks: the model must adapt to each one from its support set, which is what the
inner loop of MAML does.  ``load_characters`` is the data entry point of every notebook.
"""
from __future__ import annotations

import os

import torch

from lecture_utils.characters import SPLITS, CharacterSet, character_of, split_characters
from lecture_utils.omniglot import OMNIGLOT_ENV, load_omniglot, load_vendored_omniglot
from lecture_utils.tasks import TaskBatch
from lecture_utils.validation import check_choice, check_count, check_cpu_generator

SPLIT_FRACTIONS = (0.75, 0.10, 0.15)  # of the characters, for (train, val, test)


def omniglot_root(root: str | None = None) -> str | None:
    """The folder of a full Omniglot download when one is asked for (``root`` or
    ``$MAML_LECTURE_OMNIGLOT``); None means the minimal archives shipped in ``data/omniglot/``."""
    return root or os.environ.get(OMNIGLOT_ENV, "").strip() or None


def character_source(root: str | None = None) -> str:
    """The name of the character data ``load_characters`` would use, without loading it:
    ``"omniglot-minimal"`` (shipped) or ``"omniglot"`` (a folder given by ``root`` or the variable)."""
    return "omniglot-minimal" if omniglot_root(root) is None else "omniglot"


def load_characters(split: str = "train", root: str | None = None, seed: int = 0, verbose: bool = True,
                    *, cache_dir: str | None = None) -> CharacterSet:
    """The character classes of one split of Omniglot, split by character (all four rotations of a
    character in the same split, as in the MAML paper), with a fixed ``seed``.

    By default the two minimal background archives shipped in ``data/omniglot/`` (242 characters,
    968 classes with rotations: 182 / 24 / 36 characters for train / val / test), offline and with
    no file written.  For paper-scale runs pass ``root``, or set ``$MAML_LECTURE_OMNIGLOT``, to a
    folder holding the full archives (``omniglot.download_omniglot``); ``cache_dir`` is where their
    decoded images are cached.  With ``verbose`` one line says which data is in use.
    """
    check_choice(split, SPLITS, "split")
    root = omniglot_root(root)
    charset = load_vendored_omniglot() if root is None else load_omniglot(root, cache_dir=cache_dir)
    charset = split_characters(charset, SPLIT_FRACTIONS, seed)[split]
    if verbose:
        print(_describe(charset, split, root))
    return charset


def _describe(charset: CharacterSet, split: str, root: str | None) -> str:
    characters = len(dict.fromkeys(character_of(name) for name in charset.names))
    size = (f"{split}: {characters} characters x 4 rotations = {len(charset)} classes, "
            f"{charset.drawings} drawings each")
    if root is None:
        return f"Data: Omniglot, the minimal background splits shipped in data/omniglot ({size})."
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
