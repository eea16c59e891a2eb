"""The transductive methods on synthetic embeddings (skmeta.meta.transductive)."""

import inspect

import pytest
import torch
import torch.nn.functional as F

from skmeta.meta.transductive import TRANSDUCTIVE, make_transductive
from skmeta.meta.transductive.base import class_means, squared_distances
from skmeta.meta.transductive.laplacianshot import knn_graph
from skmeta.meta.transductive.ptmap import sinkhorn

N_CLASSES, DIM = 4, 16
FAST = {"n_iter": 200}  # TIM's 1,000 Adam steps cut where speed matters


def make_task(seed, counts, outlier=3.0):
    """Gaussian classes whose one labelled row each lies `outlier` away from
    the class centre, so the support prototypes are biased and the unlabelled
    rows (`counts` per class) show where the classes are."""
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.eye(N_CLASSES, DIM) + 2.0
    directions = F.normalize(torch.randn(N_CLASSES, DIM, generator=g), dim=1)
    support = centres + outlier * directions
    rows = [
        centres[c] + 0.7 * torch.randn(k, DIM, generator=g)
        for c, k in enumerate(counts)
    ]
    labels = [torch.full((k,), c) for c, k in enumerate(counts)]
    return support, torch.arange(N_CLASSES), torch.cat(rows), torch.cat(labels)


def accuracy(scores, labels):
    return (scores.argmax(1) == labels).double().mean().item()


def inductive_accuracy(support, support_y, rows, labels):
    protos = class_means(support.double(), support_y, N_CLASSES)
    return accuracy(-squared_distances(rows.double(), protos), labels)


def mean_accuracies(name, counts, seeds=range(4), **settings):
    method = make_transductive(name, **settings)
    ours, base = [], []
    for seed in seeds:
        support, support_y, rows, labels = make_task(seed, counts)
        state = method.fit(support, support_y, rows, N_CLASSES)
        ours.append(accuracy(state["unlabelled_scores"], labels))
        base.append(inductive_accuracy(support, support_y, rows, labels))
    return sum(ours) / len(ours), sum(base) / len(base)


def test_registry_names_and_settings():
    assert list(TRANSDUCTIVE) == [
        "bdcspn",
        "tim",
        "alpha-tim",
        "laplacianshot",
        "ptmap",
    ]
    for name, cls in TRANSDUCTIVE.items():
        assert cls.name == name and cls.summary
        assert set(cls.settings) == set(inspect.signature(cls).parameters)


@pytest.mark.parametrize("name", list(TRANSDUCTIVE))
def test_unlabelled_rows_correct_biased_prototypes(name):
    ours, base = mean_accuracies(name, [25] * N_CLASSES)
    assert base < 0.93  # the outlying labelled rows mislead the inductive rule
    assert ours >= base + 0.02


def test_alpha_tim_is_robust_to_imbalanced_unlabelled_rows():
    counts = [60, 25, 10, 5]
    tim, base = mean_accuracies("tim", counts)
    alpha_tim, _ = mean_accuracies("alpha-tim", counts)
    assert tim < base - 0.1  # TIM's marginal entropy pushes towards balance
    assert alpha_tim > tim + 0.1 and alpha_tim > base - 0.03


def test_alpha_tim_order_follows_the_shots():
    method = make_transductive("alpha-tim")
    assert [method.order(k) for k in (1, 3, 5, 10)] == [2.0, 5.0, 7.0, 7.0]
    assert make_transductive("alpha-tim", alpha=4.0).order(1) == 4.0


def test_alpha_tim_loss_weights_follow_the_classes():
    method = make_transductive("alpha-tim")
    assert method.weights_for(5) == (1.0, 1.0, 1.0)  # the paper's, tuned at 5 ways
    assert method.weights_for(6) == method.weights_for(20) == (0.1, 1.0, 0.1)
    given = make_transductive("alpha-tim", loss_weights=(1, 1, 1))
    assert given.weights_for(20) == (1.0, 1.0, 1.0)  # a user's choice is kept
    assert make_transductive("tim").weights_for(20) == (0.1, 1.0, 0.1)


def test_alpha_tim_default_loss_at_many_classes_uses_tims_weights():
    g = torch.Generator().manual_seed(0)
    n = 8
    support = F.normalize(torch.randn(n, DIM, generator=g, dtype=torch.float64), dim=1)
    rows = F.normalize(torch.randn(30, DIM, generator=g, dtype=torch.float64), dim=1)
    targets = F.one_hot(torch.arange(n), n).double()
    weights = support + 0.1
    default = make_transductive("alpha-tim").loss(weights, support, targets, rows, 1)
    tims = make_transductive("alpha-tim", loss_weights=(0.1, 1, 0.1))
    paper = make_transductive("alpha-tim", loss_weights=(1, 1, 1))
    assert torch.equal(default, tims.loss(weights, support, targets, rows, 1))
    assert not torch.allclose(default, paper.loss(weights, support, targets, rows, 1))


@pytest.mark.parametrize("name", list(TRANSDUCTIVE))
def test_shapes_determinism_and_class_relabelling(name):
    settings = FAST if "tim" in name else {}
    method = make_transductive(name, **settings)
    support, support_y, rows, _ = make_task(0, [7, 5, 6, 4])
    state = method.fit(support, support_y, rows, N_CLASSES)
    again = method.fit(support, support_y, rows, N_CLASSES)
    assert state["unlabelled_scores"].shape == (22, N_CLASSES)
    assert state["unlabelled_scores"].dtype == torch.float64
    for key in state:
        assert torch.equal(state[key], again[key]), key
    new = rows[:5] + 0.1
    scores = method.predict(state, new)
    assert scores.shape == (5, N_CLASSES) and torch.isfinite(scores).all()
    # naming the classes otherwise permutes the score columns, nothing else
    perm = torch.tensor([2, 0, 3, 1])
    relabelled = method.fit(support, perm[support_y], rows, N_CLASSES)
    torch.testing.assert_close(
        relabelled["unlabelled_scores"][:, perm], state["unlabelled_scores"]
    )
    torch.testing.assert_close(method.predict(relabelled, new)[:, perm], scores)


@pytest.mark.parametrize("name", ["bdcspn", "tim", "alpha-tim"])
def test_predict_on_the_unlabelled_rows_is_the_transduction(name):
    method = make_transductive(name, **(FAST if "tim" in name else {}))
    support, support_y, rows, _ = make_task(1, [5] * N_CLASSES)
    state = method.fit(support, support_y, rows, N_CLASSES)
    torch.testing.assert_close(method.predict(state, rows), state["unlabelled_scores"])


@pytest.mark.parametrize("name", list(TRANSDUCTIVE))
def test_no_unlabelled_rows(name):
    method = make_transductive(name, **(FAST if "tim" in name else {}))
    support, support_y, rows, _ = make_task(2, [5] * N_CLASSES)
    state = method.fit(support, support_y, rows[:0], N_CLASSES)
    assert state["unlabelled_scores"].shape == (0, N_CLASSES)
    scores = method.predict(state, rows)
    assert scores.shape == (20, N_CLASSES) and torch.isfinite(scores).all()
    # the labelled rows are classified as labelled
    assert torch.equal(method.predict(state, support).argmax(1), support_y)


def test_bdcspn_without_unlabelled_rows_is_cosine_nearest_mean():
    support, support_y, rows, _ = make_task(3, [5] * N_CLASSES)
    method = make_transductive("bdcspn")
    state = method.fit(support, support_y, rows[:0], N_CLASSES)
    cosine = F.normalize(rows.double(), dim=1) @ F.normalize(support.double(), dim=1).T
    torch.testing.assert_close(method.predict(state, rows), 10 * cosine)


def test_laplacianshot_graph_and_zero_weight():
    rows = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)).double()
    graph = knn_graph(rows, 2, exclude_self=True)
    assert graph.sum(1).tolist() == [2.0] * 12 and graph.diagonal().sum() == 0
    nearest = squared_distances(rows, rows).fill_diagonal_(float("inf")).argmin(1)
    assert graph[torch.arange(12), nearest].all()
    # lambda = 0: no Laplacian term, nearest rectified prototype
    support, support_y, unlabelled, _ = make_task(0, [6] * N_CLASSES)
    state = make_transductive("laplacianshot", lam=0.0).fit(
        support, support_y, unlabelled, N_CLASSES
    )
    assert torch.allclose(
        F.softmax(state["unlabelled_scores"], 1), state["assignments"]
    )


def test_sinkhorn_meets_its_marginals():
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(30, 3, generator=g, dtype=torch.float64)
    columns = torch.tensor([10.0, 15.0, 5.0], dtype=torch.float64)
    plan = sinkhorn(cost, columns, lam=10.0, tol=1e-9)
    torch.testing.assert_close(plan.sum(1), torch.ones(30, dtype=torch.float64))
    torch.testing.assert_close(plan.sum(0), columns)
    # a tolerance stops it earlier, rows then within it
    rough = sinkhorn(cost, columns, lam=10.0, tol=1e-2)
    assert (rough.sum(1) - 1).abs().max() < 2e-2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_transductive("nope"), "transductive='nope' is unknown"),
        (lambda: make_transductive("tim", lam=1.0), "does not take: it takes"),
        (lambda: make_transductive("tim", lr=0.0), "lr must be a finite float, 0 < lr"),
        (lambda: make_transductive("alpha-tim", alpha=1.0), "alpha must be"),
        (lambda: make_transductive("ptmap", alpha=2.0), "0 < alpha <= 1.0"),
        (lambda: make_transductive("laplacianshot", knn=0), "knn"),
        (lambda: make_transductive("bdcspn", temperature=-1), "temperature"),
        (lambda: make_transductive("tim", loss_weights=(1, 1)), "3 numbers"),
    ],
)
def test_bad_settings(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", list(TRANSDUCTIVE))
def test_every_class_needs_a_labelled_row(name):
    support, _, rows, _ = make_task(0, [3] * N_CLASSES)
    with pytest.raises(ValueError, match=r"classes \[3\] have none"):
        make_transductive(name).fit(support[:3], torch.arange(3), rows, N_CLASSES)
    with pytest.raises(ValueError, match="features"):
        make_transductive(name).fit(support, torch.arange(4), rows[:, :3], N_CLASSES)


def test_bdcspn_keeps_a_single_unlabelled_rows_inductive_label():
    """The cross-class shift mean(support) - mean(unlabelled) moved a lone
    row exactly onto the support mean, so every such row got one label (24%
    at 5-way 1-shot on Omniglot, 79.5% inductive): with fewer unlabelled rows
    than classes the shift is skipped."""
    support, support_y, rows, labels = make_task(4, [3] * N_CLASSES)
    support, rows = support.double(), rows.double()
    cosine = F.normalize(rows, dim=1) @ F.normalize(support, dim=1).T
    method = make_transductive("bdcspn")
    got = []
    for row in rows:
        state = method.fit(support, support_y, row[None], N_CLASSES)
        assert not state["shift"].any()
        got.append(state["unlabelled_scores"].argmax(1).item())
    assert got == cosine.argmax(1).tolist()
    assert len(set(got)) == N_CLASSES  # not one label for every row
    # from as many rows as classes on, the paper's shift
    state = method.fit(support, support_y, rows[:N_CLASSES], N_CLASSES)
    torch.testing.assert_close(
        state["shift"], support.mean(0) - rows[:N_CLASSES].mean(0)
    )


@pytest.mark.parametrize("n_rows", [1, N_CLASSES - 1])
def test_laplacianshot_rectifies_without_the_shift_below_one_row_per_class(n_rows):
    support, support_y, rows, _ = make_task(5, [3] * N_CLASSES)
    state = make_transductive("laplacianshot").fit(
        support, support_y, rows[:n_rows], N_CLASSES
    )
    assert not state["shift"].any()
    assert (
        make_transductive("laplacianshot")
        .fit(support, support_y, rows[:N_CLASSES], N_CLASSES)["shift"]
        .any()
    )


def test_ptmap_refuses_fewer_unlabelled_rows_than_classes():
    """Centred on their own mean, one row is a zero vector, and the balanced
    transport plan is then uniform: 17% at 5-way 1-shot on Omniglot."""
    support, support_y, rows, _ = make_task(6, [3] * N_CLASSES)
    method = make_transductive("ptmap")
    for n_rows in (1, N_CLASSES - 1):
        with pytest.raises(ValueError, match=f"got {n_rows} unlabelled row.*for 4"):
            method.fit(support, support_y, rows[:n_rows], N_CLASSES)
    assert method.fit(support, support_y, rows[:0], N_CLASSES)  # inductive form
    state = method.fit(support, support_y, rows[:N_CLASSES], N_CLASSES)
    assert torch.isfinite(state["unlabelled_scores"]).all()


def test_laplacianshot_centred_on_the_base_mean():
    """center="base": the paper's centring on the base classes' mean, which
    with rectify=False labels a batch of one class where the task mean (and
    the shift) follow that class (13.5% at 5-way 1-shot on Omniglot)."""
    support, support_y, rows, labels = make_task(7, [12, 0, 0, 0])
    base_mean = torch.full((DIM,), 2.0, dtype=torch.float64)
    method = make_transductive("laplacianshot", center="base", rectify=False)
    state = method.fit(support, support_y, rows, N_CLASSES, base_mean=base_mean)
    torch.testing.assert_close(state["center"], base_mean)
    task = make_transductive("laplacianshot").fit(support, support_y, rows, N_CLASSES)
    torch.testing.assert_close(
        task["center"], torch.cat([support, rows]).double().mean(0)
    )
    assert accuracy(state["unlabelled_scores"], labels) > accuracy(
        task["unlabelled_scores"], labels
    )
    with pytest.raises(ValueError, match="needs base_mean"):
        method.fit(support, support_y, rows, N_CLASSES)
    with pytest.raises(ValueError, match="center must be one of"):
        make_transductive("laplacianshot", center="mean")
