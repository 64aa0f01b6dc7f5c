import hashlib
import math
import time

import pytest
import torch

from lecture_utils import glyphs
from lecture_utils.episodes import GLYPH_CHARACTERS, EpisodeSampler
from lecture_utils.glyphs import make_glyphs, render_segments

# SHA-256 of make_glyphs(20, drawings=5, seed=0, rotations=False).images, float32 bytes.  The same on
# scalar, AVX2 and AVX-512 CPU paths (ATEN_CPU_CAPABILITY) and for 1 or 2 threads; a change here
# changes every notebook output that uses the glyphs.
SMALL_SET_SHA256 = "787e2359c6a808612ffbd6bf3e615db54be7f77703a2cb3073fe9137236972da"


def sha256(images):
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def fresh(*args, **kwargs):
    glyphs._glyph_images.cache_clear()
    return make_glyphs(*args, **kwargs)


def test_shape_range_names_and_source():
    charset = make_glyphs(10, drawings=6, seed=1)
    assert charset.images.shape == (40, 6, 1, 28, 28) and charset.images.dtype == torch.float32
    assert len(charset) == 40 and charset.drawings == 6 and charset.source == "glyphs"
    assert 0.0 <= charset.images.min() and charset.images.max() == 1.0
    assert charset.names[:5] == ["glyph0000/rot000", "glyph0000/rot090", "glyph0000/rot180",
                                 "glyph0000/rot270", "glyph0001/rot000"]
    ink = charset.images.mean(dim=(-1, -2, -3))
    assert ink.min() > 0.01, "every drawing has some ink"
    assert ink.max() < 0.5, "ink is a stroke on a background, not a filled canvas"


def test_rotation_classes_are_rotated_copies():
    charset = make_glyphs(5, drawings=3, seed=2)
    upright = charset.images[0::4]
    for k in (1, 2, 3):
        assert torch.equal(charset.images[k::4], upright.rot90(k, dims=(-2, -1)))
    assert torch.equal(make_glyphs(5, drawings=3, seed=2, rotations=False).images, upright)


def test_deterministic_under_a_seed_and_bit_identical_across_runs():
    first = fresh(20, drawings=5, seed=0, rotations=False)
    again = fresh(20, drawings=5, seed=0, rotations=False)
    assert torch.equal(first.images, again.images)
    assert sha256(first.images) == SMALL_SET_SHA256, "the embedded glyphs changed: notebook outputs will change"
    assert not torch.equal(first.images, fresh(20, drawings=5, seed=1, rotations=False).images)


def test_cached_sets_are_not_shared_with_callers():
    charset = make_glyphs(3, drawings=2, seed=5, rotations=False)
    charset.images.zero_()
    assert make_glyphs(3, drawings=2, seed=5, rotations=False).images.sum() > 0


def test_default_set_is_generated_fast():
    glyphs._glyph_images.cache_clear()
    start = time.perf_counter()
    charset = make_glyphs(GLYPH_CHARACTERS)
    seconds = time.perf_counter() - start
    assert len(charset) == 4 * GLYPH_CHARACTERS
    assert seconds < 5.0, f"generating the default glyphs took {seconds:.2f} s (budget: about 1-2 s)"


def test_nearest_neighbour_baseline_is_above_chance_but_far_from_perfect():
    """Pixel-space 1-nearest-neighbour, 5-way 1-shot: real Omniglot gives about 0.43 here."""
    sampler = EpisodeSampler(make_glyphs(GLYPH_CHARACTERS), n_way=5, k_shot=1, k_query=1)
    batch = sampler.sample(400, torch.Generator().manual_seed(0))
    support, query = batch.x_spt.flatten(2), batch.x_qry.flatten(2)
    nearest = torch.cdist(query, support).argmin(dim=-1)  # [T, 5] index of the closest support drawing
    accuracy = (batch.y_spt.gather(1, nearest) == batch.y_qry).float().mean().item()
    print(f"glyph pixel 1-NN accuracy, 5-way 1-shot: {accuracy:.3f}")
    assert 0.35 < accuracy < 0.95


def test_renderer_draws_a_segment_with_the_pen_width():
    # a horizontal segment on y = 0 (between pixel rows 13 and 14) from x = -0.5 to 0.5 (pixel columns 6.5 to 20.5)
    start, end = torch.tensor([[[-0.5, 0.0]]]), torch.tensor([[[0.5, 0.0]]])
    image = render_segments(start, end, torch.tensor([2.5]))[0]  # inked within 1.25 px, fading over 1 px more
    assert image[13, 14] == 1.0 and image[14, 14] == 1.0  # 0.5 px from the segment
    assert image[12, 14] == pytest.approx(0.25, abs=1e-5) and image[15, 14] == pytest.approx(0.25, abs=1e-5)  # 1.5 px: the soft edge
    assert image[11, 14] == 0.0 and image[16, 14] == 0.0  # 2.5 px
    assert image[14, 7] == 1.0 and image[14, 20] == 1.0
    assert image[14, 5] == pytest.approx(1.75 - math.hypot(1.5, 0.5), abs=1e-5)  # round end cap
    assert image[14, 3] == 0.0 and image[14, 24] == 0.0


@pytest.mark.parametrize("arguments, message", [
    ((0,), "num_characters must be an integer >= 1"),
    ((5, 0), "drawings must be an integer >= 1"),
    ((5, 20, -1), "seed must be an integer >= 0"),
])
def test_bad_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        make_glyphs(*arguments)
