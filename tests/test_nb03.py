"""The self-checks of notebook 03 accept the worked solutions and give hints otherwise."""
import torch

from lecture_utils.episodes import EpisodeSampler, load_characters
from lecture_utils.exercises import nb03
from lecture_utils.models import Conv4, is_head


def last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_saved_mib_prediction(capsys):
    torch.manual_seed(0)
    model = Conv4(5, 32)
    batch = EpisodeSampler(load_characters("test", verbose=False), 5, 1, 3).sample(1, torch.Generator().manual_seed(0))
    one, two = nb03.saved_mib(model, batch, 1), nb03.saved_mib(model, batch, 2)
    nb03.check_saved_mib_prediction(one + 19 * (two - one), model, batch)
    assert last_line(capsys).startswith("Correct")
    nb03.check_saved_mib_prediction(one * 20, model, batch)
    assert last_line(capsys).startswith("Not yet")
    nb03.check_saved_mib_prediction(None, model, batch)
    assert "None" in last_line(capsys)


def test_first_order_adapt(capsys):
    nb03.check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n] - alpha * grads[n].detach() for n in theta})
    assert last_line(capsys).startswith("Correct")
    nb03.check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n] - alpha * grads[n] for n in theta})
    assert "second-order" in last_line(capsys)
    nb03.check_first_order_adapt(lambda theta, grads, alpha: {n: (theta[n] - alpha * grads[n]).detach() for n in theta})
    assert last_line(capsys).startswith("Not yet")
    nb03.check_first_order_adapt(lambda theta, grads, alpha: None)
    assert last_line(capsys).startswith("Not yet")
    nb03.check_first_order_adapt(lambda theta, grads: None)
    assert "TypeError" in last_line(capsys)
    nb03.check_first_order_adapt(None)
    assert last_line(capsys).startswith("Not yet")


def test_head_fraction(capsys):
    theta = dict(Conv4(5, 32).named_parameters())
    head = sum(p.numel() for n, p in theta.items() if is_head(n))
    total = sum(p.numel() for p in theta.values())
    nb03.check_head_fraction(head / total)
    assert last_line(capsys).startswith("Correct")
    nb03.check_head_fraction(total / head)
    assert "inverse" in last_line(capsys)
    nb03.check_head_fraction("a lot")
    assert last_line(capsys).startswith("Not yet")


def test_tasks_needed(capsys):
    accs = torch.rand(200, generator=torch.Generator().manual_seed(0))
    n = (1.96 * accs.double().std().item() / 0.01) ** 2
    nb03.check_tasks_needed(round(n), accs)
    assert last_line(capsys).startswith("Correct")
    nb03.check_tasks_needed(n ** 0.5, accs)
    assert "square" in last_line(capsys)
    nb03.check_tasks_needed(None, accs)
    assert "None" in last_line(capsys)
