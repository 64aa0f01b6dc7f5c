"""The training loop, evaluation and checkpoints."""
import pytest
import torch

from lecture_utils.checkpoints import load_checkpoint, save_checkpoint, sha256_of
from lecture_utils.maml import MAML
from lecture_utils.models import SineMLP
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.training import evaluate, mean_ci95, meta_train


def sample_sinusoids(generator, tasks=8):
    return SinusoidTasks().sample(tasks, 10, 10, generator)


def test_meta_training_lowers_the_post_adaptation_loss_and_is_seeded():
    torch.manual_seed(0)
    model, alg = SineMLP(), MAML(inner_lr=0.01)
    held_out = [sample_sinusoids(torch.Generator().manual_seed(99), tasks=50)]
    before = evaluate(model, alg, held_out)[0].mean().item()
    history = meta_train(model, alg, sample_sinusoids, iterations=300, meta_lr=3e-3, progress=False,
                         validation=lambda: (evaluate(model, alg, held_out)[0].mean().item(), None),
                         val_every=100)
    after = evaluate(model, alg, held_out)[0].mean().item()
    assert after < 0.6 * before, (before, after)
    assert history.val_step == [100, 200, 300] and len(history.train_loss) == 300
    torch.manual_seed(0)
    again = SineMLP()
    meta_train(again, alg, sample_sinusoids, iterations=300, meta_lr=3e-3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_diverging_learning_rate_names_step_and_rates():
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match=r"at step \d+ \(meta lr 0.001, inner lr 1e\+06\)"):
        meta_train(SineMLP(), MAML(inner_lr=1e6), sample_sinusoids, iterations=20, progress=False)


def test_more_inner_steps_at_test_time_are_honoured():
    torch.manual_seed(0)
    model, alg = SineMLP(), MAML(inner_lr=0.01)
    batches = [sample_sinusoids(torch.Generator().manual_seed(3))]
    zero, one = evaluate(model, alg, batches, steps=0)[0], evaluate(model, alg, batches, steps=1)[0]
    assert not torch.equal(zero, one)


def test_mean_ci95():
    mean, half = mean_ci95(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5 and half == pytest.approx(1.96 * 1.2909944 / 2, rel=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        mean_ci95(torch.tensor([1.0]))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model, path = SineMLP(), tmp_path / "sine.pt"
    save_checkpoint(path, model, {"metric": 0.5, "command": "test"})
    assert [p.name for p in tmp_path.iterdir()] == ["sine.pt"]  # no temporary file left behind
    other = SineMLP()
    assert load_checkpoint(path, other) == {"metric": 0.5, "command": "test"}
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))
    assert len(sha256_of(path)) == 64

    with pytest.raises(FileNotFoundError, match="retrain=True"):
        load_checkpoint(tmp_path / "missing.pt", SineMLP())
