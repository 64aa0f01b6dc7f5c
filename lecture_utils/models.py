"""The two networks of the lecture, written to be used functionally.

Both are plain ``nn.Module``s. MAML never changes the module's own weights in the inner loop:
it calls the module with a dict of parameters (``theta`` or an adapted ``phi_i``) through
``torch.func.functional_call``. Every model has a ``body`` (features) and a ``head`` (the last
layer), so head-only adaptation (lecture §2, remedy 2, known as ANIL) can pick the head's
parameters by name.

- ``SineMLP``: 1-40-40-1 with ReLU, the MAML paper's sinusoid regressor.
- ``Conv4``: the standard Omniglot network, 4 x [3x3 conv, batch norm, ReLU, 2x2 max-pool]
  and a linear head.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

HEAD = "head."


class SineMLP(nn.Module):
    """1-40-40-1 ReLU network for sinusoid regression (Finn et al. 2017, §5.1). ``dtype=torch.float64``
    builds it in double precision, for live training in a notebook whose printed digits must not
    depend on the CPU's rounding."""

    def __init__(self, hidden: int = 40, dtype: torch.dtype | None = None):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden, dtype=dtype), nn.ReLU(),
                                  nn.Linear(hidden, hidden, dtype=dtype), nn.ReLU())
        self.head = nn.Linear(hidden, 1, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.head(self.body(x))

    def check_input(self, x: Tensor) -> None:
        """Inputs of another width than the first layer's would fail deep inside a matrix product."""
        if x.shape[-1] != self.body[0].in_features:
            raise ValueError(f"SineMLP takes inputs of shape [..., {self.body[0].in_features}], got "
                             f"{tuple(x.shape)}: sinusoid inputs are [T, n, 1]")


class BatchStatNorm2d(nn.Module):
    """Batch norm that always uses the statistics of the batch in front of it.

    MAML normalises each task's support (or query) set with its own statistics and keeps no
    running averages. ``nn.BatchNorm2d(track_running_stats=False)`` does the same arithmetic,
    but when autograd differentiates through a vmapped ``torch.func.grad`` (``MAML(...,
    batching="vmap")``) its second-order meta-gradient is wrong; pure ``torch.func`` is exact
    (notebook 02 §6 shows the measurement). Written from primitives, the mean and variance are
    ordinary tensor ops that every composition differentiates exactly.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        # (x - mean) / sqrt(var + eps) * weight + bias with four full-size operations instead of six:
        # x - mean is computed once and the weight is folded into 1/sqrt(var + eps) per channel.
        # Same value; a second-order MAML step of the character models is about 15% faster on the
        # CPU (221 -> 189 ms for chars5_maml, one thread), since the derivatives of a division
        # by a full-size tensor are gone.
        centred = x - x.mean(dim=(0, 2, 3), keepdim=True)
        var = (centred * centred).mean(dim=(0, 2, 3), keepdim=True)
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        return centred * scale + self.bias.view(1, -1, 1, 1)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        BatchStatNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Four conv blocks and a linear head: 28x28 -> 14 -> 7 -> 3 -> 1 spatial, then N logits."""

    def __init__(self, n_way: int, hidden: int = 64, in_channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            conv_block(in_channels, hidden), conv_block(hidden, hidden),
            conv_block(hidden, hidden), conv_block(hidden, hidden), nn.Flatten(),
        )
        self.head = nn.Linear(hidden, n_way)

    def forward(self, x: Tensor) -> Tensor:
        features = self.body(x)
        if features.shape[-1] != self.head.in_features:
            raise ValueError(f"Conv4 takes 28x28 images (shape [n, C, 28, 28]), got {tuple(x.shape)}: "
                             "resize the images to 28x28")
        return self.head(features)


def parameters_of(model: nn.Module) -> dict[str, Tensor]:
    """theta as a dict name -> tensor: the form every function in ``maml.py`` takes."""
    return dict(model.named_parameters())


def is_head(name: str) -> bool:
    """True for the parameters of the last layer, the only ones ANIL adapts."""
    return name.startswith(HEAD)


def forward_with(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """f(x; params): run ``model`` with ``params`` in place of its own weights."""
    return functional_call(model, params, (x,))
