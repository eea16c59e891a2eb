"""TIM's closed-form gradient (skmeta.meta.accel.tim_gradient) equals its
reference, autograd's gradient of the loss, and the switch picks between them."""

import pytest
import torch
import torch.nn.functional as F

from skmeta.meta import accel
from skmeta.meta.accel.tim_gradient import tim_gradient
from skmeta.meta.transductive import make_transductive
from skmeta.meta.transductive.tim import TIM

METHODS = [
    ("tim", {}),
    ("alpha-tim", {}),
    ("alpha-tim", {"alpha": 3.0, "loss_weights": (0.5, 2.0, 1.0)}),
    ("tim", {"temperature": 3.0, "loss_weights": (1.0, 0.3, 2.0)}),
]


def _problem(seed=1, n_unlabelled=9, n_classes=3):
    g = torch.Generator().manual_seed(seed)
    n_support = 2 * n_classes
    support = F.normalize(
        torch.randn(n_support, 7, generator=g, dtype=torch.float64), dim=1
    )
    rows = F.normalize(
        torch.randn(n_unlabelled, 7, generator=g, dtype=torch.float64), dim=1
    )
    targets = F.one_hot(torch.arange(n_support) % n_classes, n_classes).double()
    weights = torch.randn(n_classes, 7, generator=g, dtype=torch.float64)
    return weights, support, targets, rows


@pytest.mark.parametrize("name, settings", METHODS)
@pytest.mark.parametrize("shots", [1, 3, 5])
@pytest.mark.parametrize("n_unlabelled", [0, 9])
@pytest.mark.parametrize("n_classes", [3, 8])  # alpha-TIM's weights differ at 8
def test_closed_form_equals_autograd(name, settings, shots, n_unlabelled, n_classes):
    method = make_transductive(name, **settings)
    for seed in range(3):
        weights, support, targets, rows = _problem(seed, n_unlabelled, n_classes)
        expected = method.reference_gradient(weights, support, targets, rows, shots)
        got = tim_gradient(method, weights, support, targets, rows, shots)
        assert expected.abs().max() > 1e-3  # a gradient worth comparing
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_the_switch_selects_the_path_and_subclasses_take_the_reference():
    tim = make_transductive("tim")
    assert accel.find("tim_gradient", tim) is tim_gradient
    assert accel.find("tim_gradient", make_transductive("alpha-tim")) is tim_gradient
    with accel.disabled():
        assert accel.find("tim_gradient", tim) is None

    class SquaredTIM(TIM):  # other query terms: the closed form does not apply
        def query_terms(self, probs, support_shots):
            h_marginal, h_conditional = super().query_terms(probs, support_shots)
            return h_marginal**2, h_conditional

    assert accel.find("tim_gradient", SquaredTIM()) is None
    weights, support, targets, rows = _problem()
    via_gradient = SquaredTIM().gradient(weights, support, targets, rows, 1)
    reference = SquaredTIM().reference_gradient(weights, support, targets, rows, 1)
    torch.testing.assert_close(via_gradient, reference, rtol=0, atol=0)
    closed_form = tim_gradient(SquaredTIM(), weights, support, targets, rows, 1)
    assert not torch.allclose(closed_form, reference)


@pytest.mark.parametrize("name", ["tim", "alpha-tim"])
@pytest.mark.parametrize("n_classes", [4, 8])  # alpha-TIM's weights differ at 8
def test_fit_is_the_same_with_either_path(name, n_classes, monkeypatch):
    calls = []
    reference = TIM.reference_gradient

    def counted(self, *args):
        calls.append(1)
        return reference(self, *args)

    monkeypatch.setattr(TIM, "reference_gradient", counted)
    method = make_transductive(name, n_iter=100)
    g = torch.Generator().manual_seed(0)
    support = torch.randn(2 * n_classes, 5, generator=g, dtype=torch.float64)
    support_y = torch.arange(n_classes).repeat(2)
    rows = torch.randn(20, 5, generator=g, dtype=torch.float64)
    fast = method.fit(support, support_y, rows, n_classes)
    assert calls == []  # the closed form, with the paths on
    with accel.disabled():
        slow = method.fit(support, support_y, rows, n_classes)
    assert len(calls) == 100  # autograd at each Adam step
    torch.testing.assert_close(fast["weights"], slow["weights"], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(
        fast["unlabelled_scores"], slow["unlabelled_scores"], rtol=1e-9, atol=1e-9
    )
    with accel.disabled(), torch.inference_mode():  # autograd still works
        again = method.fit(support, support_y, rows, n_classes)
    torch.testing.assert_close(again["weights"], slow["weights"], rtol=0, atol=0)
