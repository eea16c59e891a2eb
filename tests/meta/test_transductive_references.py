"""BD-CSPN, LaplacianShot and PT-MAP against direct NumPy versions of their
papers' equations and reference code, on small float64 tasks, and at the
extreme settings where an unshifted exponential overflows or underflows."""

import numpy as np
import pytest
import torch
from scipy.special import softmax

from skmeta.meta.transductive import make_transductive
from skmeta.meta.transductive.laplacianshot import LaplacianShot, knn_graph
from skmeta.meta.transductive.ptmap import power_transform

K, DIM = 4, 8


def _task(seed=0, shots=2, n_unlabelled=20):
    rng = np.random.default_rng(seed)
    centres = np.eye(K, DIM) * 3 + 1
    support_y = np.repeat(np.arange(K), shots)
    support = rng.normal(size=(K * shots, DIM)) * 0.5 + centres[support_y]
    unlabelled_y = np.arange(n_unlabelled) % K  # balanced, as PT-MAP assumes
    unlabelled = rng.normal(size=(n_unlabelled, DIM)) * 0.5 + centres[unlabelled_y]
    return support, support_y, unlabelled


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _bdcspn_scores(support, support_y, unlabelled, eps):
    """Liu et al. 2020: shift the unlabelled rows by the difference of the
    means, pseudo-label them by cosine, and weigh each class's rows by
    ``exp(eps * cos)`` normalised within the class (as a softmax)."""
    shifted = unlabelled + support.mean(0) - unlabelled.mean(0)
    protos = np.stack([support[support_y == c].mean(0) for c in range(K)])
    pseudo = (_unit(shifted) @ _unit(protos).T).argmax(1)
    rectified = []
    for c in range(K):
        rows = np.vstack([support[support_y == c], shifted[pseudo == c]])
        logits = eps * (_unit(rows) @ _unit(protos[c : c + 1]).T)[:, 0]
        rectified.append(softmax(logits) @ rows)
    return eps * _unit(shifted) @ _unit(np.stack(rectified)).T


@pytest.mark.parametrize("eps", [10.0, 1000.0])
def test_bdcspn_follows_the_paper(eps):
    """At eps=1000, exp(eps * cos) overflowed and every score was NaN."""
    support, support_y, unlabelled = _task()
    state = make_transductive("bdcspn", temperature=eps).fit(
        torch.tensor(support), torch.tensor(support_y), torch.tensor(unlabelled), K
    )
    expected = _bdcspn_scores(support, support_y, unlabelled, eps)
    np.testing.assert_allclose(state["unlabelled_scores"].numpy(), expected, atol=1e-9)


def _bound_updates(unary, kernel, lam, n_iter=20):
    """Ziko et al. 2020's ``bound_update``: assignments ``softmax(-unary +
    lam * kernel @ Y)``, stopped when the energy changes by <= 1e-6."""
    assignments, previous = softmax(-unary, axis=1), None
    for step in range(n_iter):
        assignments = softmax(-unary + lam * kernel @ assignments, axis=1)
        pairwise = kernel @ assignments
        energy = (
            assignments * np.log(np.maximum(assignments, 1e-20))
            + unary * assignments
            - lam * pairwise * assignments
        ).sum()
        if step > 1 and abs(energy - previous) <= 1e-6 * abs(previous):
            break
        previous = energy
    return assignments


@pytest.mark.parametrize("lam", [0.7, 3.0])
def test_laplacianshot_bound_updates_follow_the_reference_code(lam):
    """The bound updates with a weight on the graph (a sign flip of the
    pairwise term passed every test before this one)."""
    _, _, unlabelled = _task(seed=1)
    rng = np.random.default_rng(2)
    unary = rng.random((len(unlabelled), K)) * 2
    graph = knn_graph(torch.tensor(unlabelled), 2, exclude_self=True)
    ours = LaplacianShot(lam=lam)._bound_updates(torch.tensor(unary), graph)
    expected = _bound_updates(unary, graph.numpy(), lam)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-9)
    assert np.abs(expected - softmax(-unary, axis=1)).max() > 0.05  # lam matters


def _ptmap_plan(support, support_y, unlabelled, lam, beta=0.5, alpha=0.2):
    """Hu et al. 2021's reference code (power transform, centring, Sinkhorn
    stopped when the row sums change by <= 1e-6, 20 MAP updates of the class
    centres), each row of the kernel shifted by its smallest cost, which
    cancels out (the code shifts by nothing and underflows at a large lam)."""

    def transform(rows):
        return _unit(np.power(rows + 1e-6, beta))

    labelled, rows = transform(support), transform(unlabelled)
    labelled, rows = _unit(labelled - labelled.mean(0)), _unit(rows - rows.mean(0))
    centres = np.stack([labelled[support_y == c].mean(0) for c in range(K)])
    everything = np.vstack([labelled, rows])

    def plan_of(centres):
        cost = ((rows[:, None] - centres[None]) ** 2).sum(-1)
        plan = np.exp(-lam * (cost - cost.min(1, keepdims=True)))
        plan, sums = plan / plan.sum(), np.zeros(len(rows))
        for _ in range(1000):
            if np.abs(sums - plan.sum(1)).max() <= 1e-6:
                break
            sums = plan.sum(1)
            plan = plan / sums[:, None]
            plan = plan * (len(rows) / K / plan.sum(0))[None]
        return plan

    for _ in range(20):
        mask = np.vstack([np.eye(K)[support_y], plan_of(centres)])
        estimate = (mask.T @ everything) / mask.sum(0)[:, None]
        centres = centres + alpha * (estimate - centres)
    return plan_of(centres)


@pytest.mark.parametrize("lam", [10.0, 1000.0])
def test_ptmap_follows_the_reference_code(lam):
    """At lam=1000 the plan, shifted by the smallest cost of all rows, was
    zero on whole rows and every score NaN."""
    support, support_y, unlabelled = _task(seed=3, n_unlabelled=K * 5)
    support, unlabelled = np.abs(support), np.abs(unlabelled)
    state = make_transductive("ptmap", lam=lam).fit(
        torch.tensor(support), torch.tensor(support_y), torch.tensor(unlabelled), K
    )
    plan = state["unlabelled_scores"].exp().numpy()
    assert np.isfinite(plan).all()
    expected = _ptmap_plan(support, support_y, unlabelled, lam)
    np.testing.assert_allclose(plan, expected, atol=1e-9)


def test_bdcspn_weights_stay_finite_where_a_non_member_scores_higher():
    """A row outside a class whose cosine to the class's prototype beats every
    member's by more than 709 / temperature overflowed exp to inf, and
    0 * inf made the prototype NaN (a diff reviewer's geometry)."""
    support = torch.tensor([[0.17, 0.98], [0.17, -0.98], [1.0, 0.05], [0.9, 0.1]])
    unlabelled = torch.tensor([[0.9, 0.2], [0.9, 0.15]], dtype=torch.float64)
    state = make_transductive("bdcspn", temperature=1000.0, shift=False).fit(
        support.double(), torch.tensor([0, 0, 1, 1]), unlabelled, 2
    )
    assert torch.isfinite(state["unlabelled_scores"]).all()
    assert torch.isfinite(state["prototypes"]).all()


def test_ptmap_power_transform_of_zeros_follows_the_reference_code():
    """A ReLU network's zeros: the reference ``(f + 1e-6) ** beta`` makes them
    1e-3; ``sign(f) * ...`` made them 0, since sign(0) = 0."""
    support, support_y, unlabelled = _task(seed=4, n_unlabelled=K * 5)
    support, unlabelled = np.maximum(support - 1, 0), np.maximum(unlabelled - 1, 0)
    assert (support == 0).mean() > 0.3 and (unlabelled == 0).mean() > 0.3
    rows = torch.tensor(unlabelled)
    np.testing.assert_allclose(
        power_transform(rows, 0.5).numpy(), _unit(np.power(unlabelled + 1e-6, 0.5))
    )
    state = make_transductive("ptmap").fit(
        torch.tensor(support), torch.tensor(support_y), rows, K
    )
    expected = _ptmap_plan(support, support_y, unlabelled, 10.0)
    np.testing.assert_allclose(
        state["unlabelled_scores"].exp().numpy(), expected, atol=1e-9
    )
    # negative values keep their sign
    signed = power_transform(torch.tensor([[-4.0, 0.0, 4.0]], dtype=torch.float64), 0.5)
    assert signed[0, 0] == -signed[0, 2] and signed[0, 1] > 0
