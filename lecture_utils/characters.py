"""A set of handwritten character classes, and how to split it by character (Lecture 4, section 1).

Few-shot classification in the lecture follows the Omniglot protocol (Lake et al. 2015; MAML
paper, section 5.2): every character is a class, each with a handful of drawings, and each
character rotated by 90, 180 and 270 degrees counts as a further class.  Meta-training,
meta-validation and meta-testing use disjoint characters, so a test episode shows characters the
meta-learner has never seen.  The four rotations of a character always land in the same split:
otherwise a test class would be a rotated copy of a training class.

``omniglot.py`` reads the archives into a ``CharacterSet``; ``episodes.py`` splits it and draws episodes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from lecture_utils.validation import check_split_sizes

ROTATIONS = (0, 90, 180, 270)
SPLITS = ("train", "val", "test")
_ROTATION_SUFFIX = re.compile(r"/rot\d{3}$")


@dataclass
class CharacterSet:
    """Drawings of character classes."""

    images: Tensor  # float32 [C, D, 1, 28, 28] in [0, 1], ink = 1.0 on a 0.0 background; C classes, D drawings each
    names: list[str]  # one per class, e.g. "Latin/character01/rot090"
    source: str  # "omniglot-minimal" (shipped) or "omniglot" (a full download)

    def __post_init__(self):
        if self.images.dim() != 5 or self.images.shape[2] != 1:
            raise ValueError(f"images must have shape [classes, drawings, 1, height, width], "
                             f"got {tuple(self.images.shape)}")
        if len(self.names) != len(self.images):
            raise ValueError(f"names must give one name per class: {len(self.images)} classes, "
                             f"{len(self.names)} names")

    def __len__(self) -> int:
        """The number of classes."""
        return len(self.images)

    @property
    def drawings(self) -> int:
        """The number of drawings per class."""
        return self.images.shape[1]

    def subset(self, classes) -> CharacterSet:
        """The classes at the given indices, in that order."""
        classes = torch.as_tensor(classes, dtype=torch.long)
        return CharacterSet(self.images[classes], [self.names[i] for i in classes.tolist()], self.source)


def with_rotations(images: Tensor, names: list[str]) -> tuple[Tensor, list[str]]:
    """Add each character rotated by 90, 180 and 270 degrees (counter-clockwise) as new classes.

    ``images`` [C, D, 1, H, W] becomes [4C, D, 1, H, W]; the four rotations of a character are
    adjacent, named ``"<name>/rot000"``, ``"<name>/rot090"``, ``"<name>/rot180"``, ``"<name>/rot270"``.
    """
    rotated = torch.stack([images.rot90(angle // 90, dims=(-2, -1)) for angle in ROTATIONS], dim=1)
    rotated_names = [f"{name}/rot{angle:03d}" for name in names for angle in ROTATIONS]
    return rotated.reshape(-1, *images.shape[1:]), rotated_names


def character_of(class_name: str) -> str:
    """The character a class belongs to: its name without the rotation suffix."""
    return _ROTATION_SUFFIX.sub("", class_name)


def split_characters(charset: CharacterSet, sizes=(0.75, 0.10, 0.15), seed: int = 0) -> dict[str, CharacterSet]:
    """Split by character into ``{"train", "val", "test"}``, never by drawing.

    ``sizes`` gives (train, val, test) either as fractions of the characters that sum to 1, or as
    numbers of characters that sum to at most the number available (the rest go unused).  The
    characters are shuffled with ``seed`` first; all rotations of a character stay together.
    """
    characters = list(dict.fromkeys(character_of(name) for name in charset.names))
    counts = check_split_sizes(sizes, len(characters))
    order = torch.randperm(len(characters), generator=torch.Generator().manual_seed(seed)).tolist()
    split_of_character, start = {}, 0
    for split, count in zip(SPLITS, counts):
        for index in order[start:start + count]:
            split_of_character[characters[index]] = split
        start += count
    classes = {split: [] for split in SPLITS}
    for index, name in enumerate(charset.names):
        split = split_of_character.get(character_of(name))
        if split is not None:
            classes[split].append(index)
    return {split: charset.subset(indices) for split, indices in classes.items()}
