"""A black-box meta-learner, the contrast of the lecture's Appendix B.

It gets no gradient step at test time. A sequence model reads the labelled support set and
the query input and outputs the query prediction, in the spirit of SNAIL (Mishra et al. 2018)
and memory-augmented networks (Santoro et al. 2016): each support example becomes a token
(its features and its label); the tokens attend to each other; each query attends to the
tokens and is decoded into a prediction. Everything it "learns" about a new task is what this
forward pass extracts, which is why tasks far outside the meta-training distribution hurt it
more than MAML (notebook 04 measures this).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import vmap

from lecture_utils.models import Conv4
from lecture_utils.tasks import as_task_batch
from lecture_utils.validation import LOSSES, check_batch, check_choice, model_dtype


class BlackBoxLearner(nn.Module):
    """prediction = f(x_qry | (x_spt, y_spt)), batched over tasks: inputs [T, S or Q, ...]."""

    def __init__(self, encoder: nn.Module, feature_dim: int, label_dim: int, out_dim: int,
                 width: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.encoder = encoder
        self.label_dim = label_dim
        self.to_token = nn.Linear(feature_dim + label_dim, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                           batch_first=True)
        self.context = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.read = nn.MultiheadAttention(width, heads, batch_first=True)
        self.decode = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, out_dim))

    @classmethod
    def for_sinusoid(cls, hidden: int = 40, width: int = 64) -> "BlackBoxLearner":
        encoder = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        return cls(encoder, hidden, label_dim=1, out_dim=1, width=width)

    @classmethod
    def for_characters(cls, n_way: int, hidden: int = 64, width: int = 64) -> "BlackBoxLearner":
        return cls(Conv4(n_way, hidden).body, hidden, label_dim=n_way, out_dim=n_way, width=width)

    def label_features(self, y: Tensor) -> Tensor:
        if self.label_dim == 1:                      # regression: the target value itself
            return y.reshape(*y.shape[:2], 1).to(self.to_token.weight.dtype)
        return F.one_hot(y, self.label_dim).to(self.to_token.weight.dtype)

    def encode(self, x: Tensor) -> Tensor:
        """Features [T, n, d], one task at a time (vmap): batch norm in the encoder then uses
        each task's own statistics, so no task's prediction depends on the others in the batch."""
        return vmap(self.encoder)(x)

    def forward(self, x_spt: Tensor, y_spt: Tensor, x_qry: Tensor) -> Tensor:
        support = self.to_token(torch.cat([self.encode(x_spt), self.label_features(y_spt)], -1))
        support = self.context(support)
        q = self.encode(x_qry)
        queries = self.to_token(torch.cat([q, q.new_zeros(*q.shape[:2], self.label_dim)], -1))
        read, _ = self.read(queries, support, support, need_weights=False)
        return self.decode(torch.cat([queries, read], -1))


@dataclass(frozen=True)
class BlackBox:
    """The black-box meta-objective: mean query loss of one forward pass per task."""

    task: str = "regression"

    def __post_init__(self):
        check_choice(self.task, tuple(LOSSES), "task type")

    def predict(self, model: BlackBoxLearner, batch, steps: int | None = None) -> Tensor:
        """Query predictions [T, Q, ...]: one forward pass per task (what ``evaluate`` scores)."""
        return self.objective(model, batch, steps)[1]

    def objective(self, model: BlackBoxLearner, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        if steps:
            raise ValueError("a black-box learner has no inner steps to change; pass steps=None")
        batch = check_batch(self.task, as_task_batch(batch), model_dtype(model))
        preds = model(batch.x_spt, batch.y_spt, batch.x_qry)
        return LOSSES[self.task](preds.flatten(0, 1), batch.y_qry.flatten(0, 1)), preds
