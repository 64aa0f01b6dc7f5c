"""The self-checks of notebooks 01 and 02 accept the worked solutions and catch the usual mistakes."""
import torch
import torch.nn.functional as F

from lecture_utils.exercises import nb01, nb02
from lecture_utils.models import forward_with


def last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_nb01_inner_step_and_meta_gradient(capsys):
    nb01.check_inner_step(nb01.solution_inner_step())
    assert last_line(capsys).startswith("Correct")
    nb01.check_inner_step(-1.0)
    assert "sign is flipped" in last_line(capsys)
    nb01.check_meta_gradient(nb01.solution_meta_gradient())
    assert last_line(capsys).startswith("Correct")
    nb01.check_meta_gradient(-18.0)
    assert "first-order" in last_line(capsys)
    nb01.check_meta_gradient(float("nan"))
    assert last_line(capsys).startswith("Not yet")


def test_nb01_same_parameters(capsys):
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    nb01.check_same_parameters(model, model)
    assert "same object" in last_line(capsys)
    nb01.check_same_parameters(None, model)
    assert last_line(capsys).startswith("Not yet")


def test_nb02_checks(capsys):
    nb02.check_second_derivative(nb02.solution_second_derivative())
    assert last_line(capsys).startswith("Correct")
    nb02.check_second_derivative(torch.tensor(32.0))
    assert "first derivative" in last_line(capsys)
    nb02.check_backward_twice(nb02.solution_backward_twice())
    assert last_line(capsys).startswith("Correct")
    nb02.check_meta_gradient_function(nb02.solution_meta_gradient)
    assert last_line(capsys).startswith("Correct")

    def buggy(model, x_spt, y_spt, x_qry, y_qry, alpha):  # create_graph forgotten
        theta = list(model.parameters())
        grads = torch.autograd.grad(F.mse_loss(model(x_spt), y_spt), theta)
        phi = {n: p - alpha * g for (n, p), g in zip(model.named_parameters(), grads)}
        return torch.autograd.grad(F.mse_loss(forward_with(model, phi, x_qry), y_qry), theta)

    nb02.check_meta_gradient_function(buggy)
    assert "first-order" in last_line(capsys)
    nb02.check_meta_gradient_function(lambda *args: 1 / 0)
    assert "ZeroDivisionError" in last_line(capsys)
