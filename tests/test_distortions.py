import math

import pytest
import torch

from lecture_utils.distortions import distort


def images(*batch):
    return torch.rand(*batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def vertical_bar():
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 4:24, 14] = 1.0
    return image


def column_centre(row):
    return float((row * torch.arange(28)).sum() / row.sum())


def test_identity_parameters_return_the_input_unchanged():
    x = images(3, 5)
    assert distort(x) is x
    assert distort(x, shear=0.0, scale=1.0, rotation=0.0) is x
    assert distort(x, scale=torch.ones(3)) is x


def test_rotation_is_counter_clockwise_in_radians():
    x = images(2, 4)
    assert torch.allclose(distort(x, rotation=math.pi / 2), x.rot90(1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_shear_is_an_angle_that_slants_vertical_strokes():
    sheared = distort(vertical_bar(), shear=math.atan(0.5))[0, 0]  # shear factor tan(angle) = 0.5
    top, bottom = column_centre(sheared[5]), column_centre(sheared[22])
    assert top < 14 < bottom  # x -> x + 0.5 y with y pointing down
    assert bottom - top == pytest.approx(0.5 * 17, abs=0.5)


def test_scale_shrinks_the_drawing_about_the_centre():
    small = distort(vertical_bar(), scale=0.5)
    assert small.sum().item() == pytest.approx(vertical_bar().sum().item() / 4, rel=0.05)
    rows = small[0, 0].sum(dim=1).nonzero().flatten()
    assert 8 <= rows.min() and rows.max() <= 19


def test_per_task_magnitudes_apply_to_each_task():
    x = images(2, 3)
    y = distort(x, shear=[0.0, 0.4], scale=torch.tensor([1.0, 0.7]))
    assert y.shape == x.shape
    assert torch.allclose(y[0], x[0], atol=1e-5, rtol=0)
    assert torch.allclose(y[1], distort(x[1], shear=0.4, scale=0.7), atol=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), [1.0, 0.0]])
def test_bad_scale_is_rejected(scale):
    with pytest.raises(ValueError, match=r"scale must be a finite number > 0"):
        distort(images(2, 1), scale=scale)


def test_bad_shear_rotation_and_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"shear is an angle in radians and must lie in \(-pi/2, pi/2\)"):
        distort(images(2), shear=math.pi / 2)
    with pytest.raises(ValueError, match="rotation must be a finite angle"):
        distort(images(2), rotation=float("nan"))
    with pytest.raises(ValueError, match="scale must be a number, or one value per leading index"):
        distort(images(2, 3), scale=[1.0, 0.5, 0.7])
    with pytest.raises(ValueError, match="floating-point tensor"):
        distort(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), scale=0.5)


@pytest.mark.cuda
def test_distort_runs_on_the_images_device():
    x = images(4, 5)
    gpu = distort(x.cuda(), shear=[0.1, 0.2, 0.3, 0.4], scale=0.8)
    assert gpu.is_cuda
    assert torch.allclose(gpu.cpu(), distort(x, shear=[0.1, 0.2, 0.3, 0.4], scale=0.8), atol=1e-5, rtol=0)
