"""Sheared, scaled and rotated characters for Appendix B: black-box meta-learners vs MAML under distortion.

Appendix B repeats the robustness study of Finn & Levine (2018): meta-train on undistorted
characters, then meta-test on tasks whose drawings are sheared and scaled ever further from the
meta-training distribution.  A gradient step still makes progress on such tasks, so MAML degrades
gracefully where a black-box learner, which only learned to map familiar support sets to weights,
falls off.  ``distort`` makes those test drawings, on the images' own device.

Conventions (image coordinates, x to the right, y down, origin at the image centre): the content is
first scaled by ``scale``, then sheared horizontally by the angle ``shear`` in radians
(x -> x + tan(shear) * y), then rotated counter-clockwise as displayed by ``rotation`` radians.
Pixels that come from outside the image are background (0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lecture_utils.validation import check_distortion


def distort(images: Tensor, shear=0.0, scale=1.0, rotation=0.0) -> Tensor:
    """Shear, scale and rotate ``images`` [..., C, H, W] (e.g. [T, N*K, 1, 28, 28]).

    Each parameter is a number, or one value per leading index (shape [images.shape[0]], e.g. one
    per task).  ``shear`` must lie in (-pi/2, pi/2), ``scale`` must be > 0.  With the identity
    parameters (0, 1, 0) the input tensor itself is returned.
    """
    if images.dim() < 3 or not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor [..., C, H, W], "
                         f"got {images.dtype} of shape {tuple(images.shape)}")
    shear = _per_image(shear, "shear", images)
    scale = _per_image(scale, "scale", images)
    rotation = _per_image(rotation, "rotation", images)
    check_distortion(shear, scale, rotation)
    if torch.all((shear == 0) & (scale == 1) & (rotation == 0)):
        return images
    # affine_grid wants the inverse map, from output pixel to input pixel:
    # (rotate . shear . scale)^-1 = scale^-1 . shear^-1 . rotate^-1
    cos, sin, tan = rotation.cos(), rotation.sin(), shear.tan()
    zero = torch.zeros_like(cos)
    inverse = torch.stack([torch.stack([cos - tan * sin, -sin - tan * cos, zero], -1),
                           torch.stack([sin, cos, zero], -1)], -2) / scale[:, None, None]
    flat = images.reshape(-1, *images.shape[-3:])
    grid = F.affine_grid(inverse.to(images.device, images.dtype), list(flat.shape), align_corners=False)
    distorted = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return distorted.reshape(images.shape)


def _per_image(value, name: str, images: Tensor) -> Tensor:
    """``value`` as a float64 CPU tensor with one entry per image in the batch ``images.shape[:-3]``."""
    value = torch.as_tensor(value, dtype=torch.float64, device="cpu")
    batch = images.shape[:-3]
    if value.dim() == 1 and len(batch) >= 1 and len(value) == batch[0]:
        value = value.reshape(-1, *[1] * (len(batch) - 1))
    elif value.dim() != 0:
        raise ValueError(f"{name} must be a number, or one value per leading index of the images "
                         f"(shape {tuple(images.shape)}), got shape {tuple(value.shape)}")
    return value.expand(batch).reshape(-1)
