"""Embedded handwritten glyphs: the offline default character set (Lecture 4, section 1).

Real Omniglot is opt-in (see ``omniglot.py``); every notebook and CI run uses this family instead
by default.  It mimics how Omniglot was made: a character is a stroke program, and each drawing
is a new attempt at it by an unsteady hand.

* A character is 1 to 3 strokes, each a cubic Bezier curve through four random control points;
  a later stroke starts where the previous one ended half of the time, as a pen often does.  The
  character is centred and scaled to fill its box, as a writer fills the space given.
* A drawing moves every control point by Gaussian motor noise, varies the pen width a little and
  applies a small random affine jitter (rotation, scale, shear, translation) to the whole glyph.
* The curves are cut into short segments and rendered anti-aliased at 28x28 from each pixel's
  distance to the nearest segment, for all pixels and drawings at once (no loop over pixels).

Generation is deterministic under a seed (one CPU generator, fixed draw order) and bit-identical
across CPUs; the default set (400 characters x 20 drawings) takes about a second, and finished
sets are kept in memory per arguments.  In pixel space, 1-nearest-neighbour solves about 63% of
5-way 1-shot episodes (real Omniglot: about 43%): the drawings vary, but the classes are learnable.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

from .characters import CharacterSet, with_rotations
from .tasks import check_count

CANVAS = 28  # pixels per side
MAX_STROKES = 3
POINTS_PER_STROKE = 6  # points sampled along each Bezier curve: 5 segments per stroke
GLYPH_BOX = 0.7  # a character's control points span [-GLYPH_BOX, GLYPH_BOX] on their wider side; the canvas spans [-1, 1]
PEN_WIDTH = (1.2, 2.0)  # pixels, drawn once per character
CONNECTED_STROKE_PROBABILITY = 0.5

# Per-drawing variation: what makes two drawings of one character differ.
MOTOR_NOISE = 0.11  # std of the control-point noise, in canvas units (1 unit = 14 pixels)
WIDTH_JITTER = 0.15  # relative
ROTATION_JITTER = 0.2  # radians
SCALE_JITTER = 0.10  # relative
SHEAR_JITTER = 0.2  # shear factor
SHIFT_JITTER = 0.1  # canvas units

_RENDER_CHUNK = 32  # drawings rendered together; keeps the working set in the CPU cache


class GlyphPrograms(NamedTuple):
    """The stroke programs of C characters."""

    control: Tensor  # [C, MAX_STROKES, 4, 2] Bezier control points (x right, y down)
    num_strokes: Tensor  # [C] strokes actually used, 1..MAX_STROKES
    pen_width: Tensor  # [C] pixels


def make_glyphs(num_characters: int, drawings: int = 20, seed: int = 0, rotations: bool = True) -> CharacterSet:
    """A ``CharacterSet`` of ``num_characters`` procedurally generated characters.

    With ``rotations`` each character also appears rotated by 90, 180 and 270 degrees as three
    further classes (the Omniglot protocol), named ``"glyph0042/rot180"`` and so on.
    """
    check_count("num_characters", num_characters)
    check_count("drawings", drawings)
    check_count("seed", seed, minimum=0)
    images = _glyph_images(num_characters, drawings, seed)
    names = [f"glyph{index:04d}" for index in range(num_characters)]
    if rotations:
        images, names = with_rotations(images, names)
    else:
        images = images.clone()  # the cached tensor must not be changed by a caller
    return CharacterSet(images, names, source="glyphs")


@lru_cache(maxsize=4)
def _glyph_images(num_characters: int, drawings: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    programs = sample_programs(num_characters, generator)
    control, pen_width = sample_drawings(programs, drawings, generator)
    images = torch.empty(num_characters, drawings, 1, CANVAS, CANVAS)
    for strokes in range(1, MAX_STROKES + 1):  # characters with the same number of strokes render together
        group = programs.num_strokes == strokes
        curves = bezier_points(control[group, :, :strokes], POINTS_PER_STROKE)  # [c, D, strokes, P, 2]
        starts = curves[..., :-1, :].flatten(2, 3).flatten(0, 1)  # [c * D, strokes * (P - 1), 2]
        ends = curves[..., 1:, :].flatten(2, 3).flatten(0, 1)
        drawn = render_segments(starts, ends, pen_width[group].flatten())
        images[group] = drawn.view(-1, drawings, 1, CANVAS, CANVAS)
    return images


def sample_programs(num_characters: int, generator: torch.Generator) -> GlyphPrograms:
    """Draw one stroke program per character, centred and scaled so that its widest side fills the glyph box."""
    control = torch.rand(num_characters, MAX_STROKES, 4, 2, generator=generator) * 2 - 1
    connected = torch.rand(num_characters, MAX_STROKES, generator=generator) < CONNECTED_STROKE_PROBABILITY
    for stroke in range(1, MAX_STROKES):
        joined = connected[:, stroke, None]
        control[:, stroke, 0] = torch.where(joined, control[:, stroke - 1, 3], control[:, stroke, 0])
    num_strokes = torch.randint(1, MAX_STROKES + 1, (num_characters,), generator=generator)
    low, high = PEN_WIDTH
    pen_width = low + (high - low) * torch.rand(num_characters, generator=generator)

    used = (torch.arange(MAX_STROKES) < num_strokes[:, None])[:, :, None, None]  # [C, S, 1, 1]
    lowest = torch.where(used, control, torch.inf).amin(dim=(1, 2))  # [C, 2]
    highest = torch.where(used, control, -torch.inf).amax(dim=(1, 2))
    half_extent = ((highest - lowest) / 2).amax(dim=-1).clamp_min(1e-3)  # [C]
    centre = (lowest + highest) / 2
    control = (control - centre[:, None, None]) * (GLYPH_BOX / half_extent)[:, None, None, None]
    return GlyphPrograms(control, num_strokes, pen_width)


def sample_drawings(programs: GlyphPrograms, drawings: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Draw each character ``drawings`` times: control points [C, D, MAX_STROKES, 4, 2] and pen widths [C, D].

    Only the first ``programs.num_strokes`` strokes of a character are drawn; the others are ignored.
    """
    num_characters = len(programs.control)
    shape = (num_characters, drawings)
    noise = _float32(torch.randn(*shape, MAX_STROKES, 4, 2, generator=generator, dtype=torch.float64))
    control = programs.control[:, None] + MOTOR_NOISE * noise

    def jitter(size: float, *extra: int) -> Tensor:
        return (torch.rand(*shape, *extra, generator=generator) * 2 - 1) * size

    pen_width = programs.pen_width[:, None] * (1 + jitter(WIDTH_JITTER))
    # The affine jitter (x, y) -> rotate(shear(scale * (x, y))) + shift, one per drawing, applied to
    # all its control points: [C, D] coefficients broadcast over the [S, 4] points.
    angle, scale, shear = (jitter(size)[..., None, None] for size in (ROTATION_JITTER, SCALE_JITTER, SHEAR_JITTER))
    shift = jitter(SHIFT_JITTER, 2)[:, :, None, None]
    cos, sin = _float32(angle.double().cos()), _float32(angle.double().sin())
    x, y = ((1 + scale) * coordinate for coordinate in control.unbind(-1))
    x = x + shear * y
    control = torch.stack([cos * x - sin * y, sin * x + cos * y], dim=-1) + shift
    return control, pen_width


def bezier_points(control: Tensor, num_points: int) -> Tensor:
    """Points along cubic Bezier curves: control [..., 4, 2] -> [..., num_points, 2]."""
    t = torch.linspace(0, 1, num_points)[:, None]  # [P, 1]
    u = 1 - t
    p0, p1, p2, p3 = (point[..., None, :] for point in control.unbind(-2))  # each [..., 1, 2]
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3


def render_segments(starts: Tensor, ends: Tensor, pen_width: Tensor, size: int = CANVAS) -> Tensor:
    """Anti-aliased drawings of line segments: [B, M, 2] segment ends -> images [B, size, size].

    Coordinates are canvas units, [-1, 1] across the image with x to the right and y down.  A pixel
    is fully inked within ``pen_width / 2`` pixels of its nearest segment, fading to 0 over one pixel.
    The distance from pixel p to segment a -> b is |p - (a + t (b - a))|, where t is the position
    of p's projection along the segment, clamped to [0, 1].
    """
    num_images, num_segments, _ = starts.shape
    centre = (torch.arange(size, dtype=torch.float32) + 0.5) * (2 / size) - 1
    pixel_x, pixel_y = centre.repeat(size)[None], centre.repeat_interleave(size)[None]  # [1, size * size]
    # segments first, [M, B, 2], so that the min over a drawing's segments runs across rows
    start, step = starts.transpose(0, 1), (ends - starts).transpose(0, 1)
    length2 = (step * step).sum(-1, keepdim=True).clamp_min(1e-12)  # [M, B, 1]
    nearest2 = torch.empty(num_images, size * size)
    with _one_thread():
        for first in range(0, num_images, _RENDER_CHUNK):
            chunk = slice(first, first + _RENDER_CHUNK)
            a, ab = start[:, chunk].reshape(-1, 2), step[:, chunk].reshape(-1, 2)  # [M * chunk, 2]
            dx, dy = pixel_x - a[:, :1], pixel_y - a[:, 1:]  # [M * chunk, pixels]
            t = ((dx * ab[:, :1] + dy * ab[:, 1:]) / length2[:, chunk].reshape(-1, 1)).clamp_(0, 1)
            ex, ey = dx - t * ab[:, :1], dy - t * ab[:, 1:]
            distance2 = ex * ex + ey * ey
            nearest2[chunk] = distance2.view(num_segments, -1).amin(dim=0).view(-1, size * size)
    distance = nearest2.sqrt_() * (size / 2)  # pixels
    ink = (pen_width[:, None] / 2 + 0.5 - distance).clamp_(0, 1)
    return ink.view(num_images, size, size)


@contextmanager
def _one_thread():
    """Render on one CPU thread: its many small steps gain little from more threads, and on a busy
    machine waiting for a descheduled thread at every step makes them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _float32(values: Tensor) -> Tensor:
    """Round float64 results to float32.  Normal samples and cos/sin are computed in float64 and
    rounded, so that CPUs whose vectorised float32 maths differs in the last bit still produce
    bit-identical glyphs (notebook outputs are compared across machines)."""
    return values.to(torch.float32)
