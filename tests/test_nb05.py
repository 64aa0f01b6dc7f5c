"""Notebook 05 (Reptile): the drawing widget's functions (canvas <-> tensor, adapt-and-predict)
behave. The exercises are tested in tests/test_exercises.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lecture_utils.maml import MAML
from lecture_utils.models import Conv4
from lecture_utils.reptile import Reptile
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.widgets.sketchpad import (CELLS, SIZE, Sketchpad, adapt_and_predict, as_canvas_images,
                                     canvas_to_tensor, glyph_to_canvas)


# --- sketchpad ------------------------------------------------------------------------------------

def test_canvas_round_trip():
    image = torch.zeros(1, SIZE, SIZE)
    image[0, 8:20, 12:14] = 1.0                    # a vertical bar, two pixels wide
    canvas = glyph_to_canvas(image)
    assert canvas.shape == (CELLS, CELLS) and canvas.dtype == bool
    assert canvas[4:10, 6].all() and canvas.sum() == 6
    back = canvas_to_tensor(canvas)
    assert back.shape == (1, SIZE, SIZE) and 0 <= back.min() and back.max() <= 1
    assert back[0, 10:18, 12:14].min() > 0.7 and back[0, :, :8].max() == 0
    batch = torch.stack([image, torch.zeros_like(image)])
    assert torch.allclose(as_canvas_images(batch)[0], back)
    assert as_canvas_images(batch)[1].max() == 0


def test_canvas_rejects_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        canvas_to_tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="multiples"):
        glyph_to_canvas(torch.zeros(27, 27))


@pytest.mark.parametrize("algorithm", [Reptile("classification", inner_lr=0.4, inner_steps=2),
                                       MAML("classification", inner_lr=0.4, inner_steps=1)])
def test_adapt_and_predict(algorithm):
    torch.manual_seed(0)
    model = Conv4(3, hidden=8)
    x_spt, x_qry = torch.rand(3, 1, 28, 28), torch.rand(2, 1, 28, 28)
    probs = adapt_and_predict(model, algorithm, x_spt, torch.arange(3), x_qry)
    assert probs.shape == (2, 3) and torch.allclose(probs.sum(-1), torch.ones(2))
    # adapting on the support set and querying it: the support labels become more likely
    before = adapt_and_predict(model, algorithm, x_spt, torch.arange(3), x_spt, steps=0)
    after = adapt_and_predict(model, algorithm, x_spt, torch.arange(3), x_spt, steps=3)
    assert after.diagonal().mean() > before.diagonal().mean()
    with pytest.raises(ValueError, match=">= 0"):
        adapt_and_predict(model, algorithm, x_spt, torch.arange(3), x_qry, steps=-1)


def test_sketchpad_state_without_a_browser():
    torch.manual_seed(0)
    model = Conv4(2, hidden=8)
    examples = torch.zeros(3, 1, 28, 28)
    examples[0, 0, 4:24, 12:16] = 1      # class 0: a bar
    examples[1, 0, 12:16, 4:24] = 1      # class 1: a dash
    examples[2, 0, 4:24, 12:16] = 1      # query: a bar
    pad = Sketchpad({"Reptile": (model, Reptile("classification", inner_lr=0.4, inner_steps=5))},
                    examples, query_class=0)
    probs = pad.predict()
    assert probs.shape == (2,) and int(probs.argmax()) == 0
    pad.select(2)
    pad.clear()
    assert pad.predict() is None and "query" in pad.problem() and pad.query_class is None
    pad.toggle(5, 5)
    assert pad.canvases[2][5, 5] and pad.predict() is not None
    pad.restore()
    assert pad.query_class == 0 and np.array_equal(pad.canvases[2], pad.examples[2])
    pad.clear(everything=True)
    assert "class 0, class 1, query" in pad.problem()
    with pytest.raises(ValueError):
        pad.select(3)
    with pytest.raises(ValueError):
        pad.toggle(14, 0)
    widget = pad.widget                  # builds the buttons and draws once, no browser needed
    assert len(pad._buttons) == CELLS * CELLS and widget is pad.widget
    pad.restore()
    pad._slot.value = 2                  # the controls drive the same state as the methods above
    pad._buttons[0].click()
    assert pad.canvases[2][0, 0] and pad._buttons[0].style is pad._styles[True]
    pad._steps.value = 0
    pad._slot.value = 0
    assert pad._buttons[0].style is pad._styles[bool(pad.canvases[0][0, 0])]
