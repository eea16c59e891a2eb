"""Adaptation to large support sets by chunks (skmeta/meta/algorithms/chunked.py)."""

import pytest
import torch
from maml_helpers import GRADIENT_METHODS, _tiny_net

from skmeta.meta.algorithms import chunked, inner_loop, make_algorithm
from skmeta.meta.algorithms.inner_loop import task_state
from skmeta.meta.functional import embed, support_statistics
from skmeta.meta.train import TrainSettings, meta_train


def _support(n=50, width=4, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, width, generator=g, dtype=torch.float64)
    return x, torch.arange(n) % n_classes


def _leaves(net):
    return {n: p.detach().requires_grad_(True) for n, p in net.named_parameters()}


def _flat(state):
    return torch.cat([t.reshape(-1) for t in inner_loop._tensors(state)])


@pytest.fixture(scope="module")
def conv_model():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(60, 256, generator=g).numpy()
    y = torch.arange(60).numpy() % 6
    return meta_train(
        X,
        y,
        TrainSettings(
            n_way=3,
            k_shot=1,
            n_query=2,
            input_shape=(1, 16, 16),
            backbone="conv4",
            method="maml",
            max_iter=2,
            seed=0,
            backbone_params={"hidden_channels": 8},
            method_params={"inner_lr": 0.1, "inner_steps": 2},
        ),
    )


def test_support_statistics_are_the_whole_batchs():
    net = _tiny_net(make_algorithm("maml"))
    x, _ = _support()
    whole = embed(net, {}, x)[1]
    for rows in (7, 50, 200):
        stats = support_statistics(net, {}, x, rows)
        assert len(stats) == len(whole) == 1
        for got, want in zip(stats[0], whole[0], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_support_statistics_of_a_conv4_layer_after_layer(conv_model):
    net = conv_model.network()
    params = _leaves(net)
    x = torch.rand(40, 256, generator=torch.Generator().manual_seed(1))
    weights = {k: v + 0.01 for k, v in params.items() if k.startswith("backbone.")}
    with torch.no_grad():
        whole = embed(net, weights, x)[1]
    stats = support_statistics(net, weights, x, 9)
    assert len(stats) == len(whole) == 4
    for layer, want in zip(stats, whole, strict=True):
        for got, value in zip(layer, want, strict=True):
            torch.testing.assert_close(got, value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_small_support_sets_adapt_as_before_bit_for_bit(method):
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=3)
    net = _tiny_net(algorithm)
    x, y = _support(n=15)
    assert x.shape[0] <= chunked.adapt_chunk_rows(net)
    state = algorithm.adapt(net, x, y, 3)
    with torch.enable_grad():  # the one-pass inner loop, as adapt ran it before
        before = task_state(
            algorithm.adapt_tasks(net, _leaves(net), x[None], y, 3, False), 0
        )
    assert torch.equal(_flat(state), _flat(before).detach())


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_adaptation_keeps_no_graph_across_steps(method, monkeypatch):
    """Each step of the one-pass adaptation starts from leaves of its own, as
    the chunked one does: the graph back to the earlier steps held about
    twice the weights per step (a 70,000-weight MLP grew by 6.7 GB over
    10,000 steps; a model file's inner_steps decides how many)."""
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=4)
    net = _tiny_net(algorithm)
    x, y = _support(n=15)
    steps = []
    sgd_step = algorithm.sgd_step

    def recording(params, names, tensors, grads):
        steps.append([t.grad_fn is None for t in tensors])
        return sgd_step(params, names, tensors, grads)

    monkeypatch.setattr(algorithm, "sgd_step", recording)
    algorithm.adapt(net, x, y, 3)
    assert len(steps) == 4 and all(all(leaves) for leaves in steps[1:])


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_chunks_do_not_change_the_result(method, monkeypatch):
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=3)
    net = _tiny_net(algorithm)
    x, y = _support()
    one = chunked.chunked_inner_loop(algorithm, net, _leaves(net), x, y, 3, 1000, [])
    calls = []
    monkeypatch.setattr(inner_loop, "adapt_chunk_rows", lambda net: 7)
    monkeypatch.setattr(
        inner_loop,
        "chunked_inner_loop",
        lambda *args: calls.append(args[6]) or chunked.chunked_inner_loop(*args),
    )
    state = algorithm.adapt(net, x, y, 3)
    assert calls == [7]
    torch.testing.assert_close(_flat(state), _flat(one), rtol=1e-10, atol=1e-12)


def test_chunked_anil_equals_one_pass(monkeypatch):
    # the body does not adapt: no gradient through the statistics to leave out
    algorithm = make_algorithm("anil", inner_lr=0.3, inner_steps=3)
    net = _tiny_net(algorithm)
    x, y = _support()
    whole = algorithm.adapt(net, x, y, 3)
    monkeypatch.setattr(inner_loop, "adapt_chunk_rows", lambda net: 7)
    torch.testing.assert_close(_flat(algorithm.adapt(net, x, y, 3)), _flat(whole))


def test_chunked_conv4_values_match_the_whole_set(conv_model, monkeypatch):
    algorithm, net = conv_model.algorithm(inner_steps=3), conv_model.network()
    x = torch.rand(40, 256, generator=torch.Generator().manual_seed(2))
    y = torch.arange(40) % 4
    whole = chunked.chunked_inner_loop(algorithm, net, _leaves(net), x, y, 4, 40, [])
    monkeypatch.setattr(inner_loop, "adapt_chunk_rows", lambda net: 9)
    state = algorithm.adapt(net, x, y, 4)
    torch.testing.assert_close(_flat(state), _flat(whole), rtol=1e-4, atol=1e-5)
    # close to the one-pass loop too: only the statistics' gradient term differs
    monkeypatch.setattr(inner_loop, "adapt_chunk_rows", lambda net: 128)
    one_pass = algorithm.adapt(net, x, y, 4)
    with torch.inference_mode():
        a = algorithm.predict(net, state, x)
        b = algorithm.predict(net, one_pass, x)
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.9


def test_default_chunk_keeps_usual_episodes_whole(conv_model):
    net = conv_model.network()
    assert chunked.adapt_chunk_rows(net) >= 100  # 20-way 5-shot is 100 rows


def test_gradient_passes_take_smaller_chunks(conv_model, monkeypatch):
    net = conv_model.network()
    rows = chunked.gradient_chunk_rows(net)
    assert chunked.MIN_GRADIENT_CHUNK_ROWS <= rows < chunked.adapt_chunk_rows(net)
    # the loop runs its forward passes `rows` rows at a time
    seen = []
    original = chunked.embed_once

    def spy(net, weights, x, stats=None):
        seen.append(x.shape[0])
        return original(net, weights, x, stats)

    monkeypatch.setattr(chunked, "embed_once", spy)
    monkeypatch.setattr(inner_loop, "adapt_chunk_rows", lambda net: 30)
    monkeypatch.setattr(chunked, "GRADIENT_CHUNK_FLOATS", 0)  # the minimum
    x = torch.rand(70, 256, generator=torch.Generator().manual_seed(3))
    algorithm = conv_model.algorithm()
    algorithm.adapt(net, x, torch.arange(70) % 3, 3)
    assert seen and max(seen) == chunked.MIN_GRADIENT_CHUNK_ROWS


def _sine_regression(chunk_rows):
    """A regression MAML, its network, a support set (x, sin of its first
    column), and the chunked loop's state on all of it at once."""
    algorithm = make_algorithm("maml", inner_lr=0.05, inner_steps=2, regression=True)
    net = _tiny_net(algorithm)
    x, _ = _support()
    y = torch.sin(x[:, 0])
    whole = chunked.chunked_inner_loop(
        algorithm, net, _leaves(net), x, y[None], 1, chunk_rows, []
    )
    return algorithm, net, x, y, whole


def test_chunked_regression_matches_one_chunk(monkeypatch):
    algorithm, net, x, y, one = _sine_regression(chunk_rows=1000)
    monkeypatch.setattr(inner_loop, "adapt_chunk_rows", lambda net: 8)
    state = algorithm.adapt(net, x, y, 1)
    torch.testing.assert_close(_flat(state), _flat(one), rtol=1e-10, atol=1e-12)


# -- mini-batch inner steps (inner_batch_size) ---------------------------------


def test_minibatch_rows_are_seeded_epochs_of_every_row():
    batches = chunked.minibatch_rows(10, 4, 5)
    # each epoch of 10 rows is cut into ceil(10 / 4) = 3 near-equal batches
    assert [b.numel() for b in batches] == [4, 3, 3, 4, 3]
    order = torch.cat(batches)
    # the first epoch (10 rows) uses each row once, the second starts anew
    assert sorted(order[:10].tolist()) == list(range(10))
    assert len(set(order[10:].tolist())) == 7
    again = chunked.minibatch_rows(10, 4, 5)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))


def test_no_minibatch_holds_a_row_twice():
    # 299 of 300 rows per step: batches that ran on across epochs held one
    # more repeated row at each step
    labels = torch.arange(300) % 30
    for batch_rows in (299, 200, 7):
        batches = chunked.minibatch_rows(300, batch_rows, 10, labels)
        for rows in batches:
            assert rows.numel() <= batch_rows
            assert rows.unique().numel() == rows.numel()
        assert {rows.numel() for rows in batches} <= {
            300 // -(-300 // batch_rows),
            300 // -(-300 // batch_rows) + 1,
        }


def test_minibatches_hold_each_class_in_its_share():
    labels = torch.arange(100) % 5  # 20 rows per class
    batches = chunked.minibatch_rows(100, 25, 8, labels)
    for rows in batches:
        assert torch.bincount(labels[rows], minlength=5).tolist() == [5] * 5
    assert sorted(torch.cat(batches[:4]).tolist()) == list(range(100))
    # uneven classes: each batch within one row of the class's share
    labels = torch.tensor([0] * 30 + [1] * 10 + [2] * 20)
    for rows in chunked.minibatch_rows(60, 12, 5, labels):
        counts = torch.bincount(labels[rows], minlength=3).tolist()
        shares = zip(counts, [6, 2, 4], strict=True)
        assert all(abs(c - share) <= 1 for c, share in shares)


def test_inner_batch_size_is_checked():
    for bad in (0, -3, 2.5, True, "10", "Auto", ""):
        with pytest.raises(ValueError, match="inner_batch_size"):
            make_algorithm("maml", inner_batch_size=bad)
    assert make_algorithm("maml", inner_batch_size=8).inner_batch_size == 8
    assert make_algorithm("maml", inner_batch_size=None).batch_rows(10**6) is None
    assert make_algorithm("maml", inner_batch_size=8).batch_rows(9) == 8
    for method in GRADIENT_METHODS:  # the default is "auto"
        algorithm = make_algorithm(method)
        assert algorithm.inner_batch_size == "auto"
        assert algorithm.batch_rows(1000) is None
        assert algorithm.batch_rows(1001) == 400


@pytest.mark.parametrize("method", ["maml", "anil"])
def test_auto_takes_whole_set_steps_up_to_a_limit_and_minibatches_beyond(
    method, monkeypatch
):
    # the limits made small, so that the test's support sets cross them
    monkeypatch.setattr(chunked, "AUTO_WHOLE_SET_ROWS", 60)
    monkeypatch.setattr(chunked, "AUTO_INNER_BATCH_ROWS", 25)

    def adapted(n, inner_batch_size):
        x, y = _support(n=n, seed=1)
        algorithm = make_algorithm(
            method, inner_lr=0.3, inner_steps=3, inner_batch_size=inner_batch_size
        )
        return _flat(algorithm.adapt(_tiny_net(algorithm), x, y, 3))

    # up to the limit: "auto" is the exact whole-set loop
    assert torch.equal(adapted(60, "auto"), adapted(60, None))
    # a larger support set: "auto" is mini-batches of at most 25 rows
    assert torch.equal(adapted(70, "auto"), adapted(70, 25))
    assert not torch.allclose(adapted(70, "auto"), adapted(70, None))


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_a_batch_as_large_as_the_support_set_changes_nothing(method):
    x, y = _support(n=15)
    whole = make_algorithm(method, inner_lr=0.3, inner_steps=3)
    capped = make_algorithm(method, inner_lr=0.3, inner_steps=3, inner_batch_size=15)
    net = _tiny_net(whole)
    assert torch.equal(
        _flat(whole.adapt(net, x, y, 3)), _flat(capped.adapt(net, x, y, 3))
    )


@pytest.mark.parametrize("method", ["maml", "protomaml", "anil"])
def test_whole_set_batches_in_any_order_give_the_full_batch_steps(method):
    # the mean loss and the statistics do not depend on the rows' order: rows
    # and targets must be taken together for this to hold
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=3)
    net = _tiny_net(algorithm)
    x, y = _support()
    full = chunked.chunked_inner_loop(algorithm, net, _leaves(net), x, y, 3, 7, [])
    g = torch.Generator().manual_seed(4)
    batches = [torch.randperm(50, generator=g) for _ in range(3)]
    shuffled = chunked.chunked_inner_loop(
        algorithm, net, _leaves(net), x, y, 3, 7, [], batches=batches
    )
    torch.testing.assert_close(_flat(shuffled), _flat(full), rtol=1e-10, atol=1e-12)


def test_a_minibatch_step_is_a_full_step_on_its_rows():
    algorithm = make_algorithm("maml", inner_lr=0.3, inner_steps=1)
    net = _tiny_net(algorithm)
    x, y = _support()
    rows = chunked.minibatch_rows(50, 12, 1)
    one = chunked.chunked_inner_loop(
        algorithm, net, _leaves(net), x, y, 3, 5, [], batches=rows
    )
    on_rows = chunked.chunked_inner_loop(
        algorithm, net, _leaves(net), x[rows[0]], y[rows[0]], 3, 5, []
    )
    for key in ("head_weight", "head_bias"):
        torch.testing.assert_close(one[key], on_rows[key], rtol=1e-10, atol=1e-12)
    for name, w in one["weights"].items():
        torch.testing.assert_close(w, on_rows["weights"][name], rtol=1e-10, atol=1e-12)
    # the statistics kept for prediction are the whole set's
    want = support_statistics(net, one["weights"], x, 50)
    torch.testing.assert_close(one["stats"], want, rtol=1e-10, atol=1e-12)


def test_anil_minibatch_steps_are_sgd_on_the_fixed_embeddings():
    # an independent reference: plain SGD on a linear head over the body's
    # embeddings of the whole set, one seeded mini-batch per step
    algorithm = make_algorithm("anil", inner_lr=0.5, inner_steps=6, inner_batch_size=8)
    net = _tiny_net(algorithm)
    x, y = _support(n=30)
    state = algorithm.adapt(net, x, y, 3)
    with torch.no_grad():
        emb = embed(net, {}, x)[0]
    params = dict(net.named_parameters())
    weight, bias = (
        t.detach()[0].clone() for t in algorithm.initial_head(params, emb[None], y, 3)
    )
    for rows in chunked.minibatch_rows(30, 8, 6, y):
        weight.requires_grad_(True)
        bias.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(emb[rows] @ weight.T + bias, y[rows])
        gw, gb = torch.autograd.grad(loss, [weight, bias])
        weight, bias = (weight - 0.5 * gw).detach(), (bias - 0.5 * gb).detach()
    torch.testing.assert_close(state["head_weight"], weight, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state["head_bias"], bias, rtol=1e-10, atol=1e-12)


def test_minibatch_steps_read_only_their_rows(conv_model, monkeypatch):
    seen = []
    original = chunked.support_statistics

    def spy(net, weights, x, chunk_rows):
        seen.append(x.shape[0])
        return original(net, weights, x, chunk_rows)

    monkeypatch.setattr(chunked, "support_statistics", spy)
    net = conv_model.network()
    algorithm = conv_model.algorithm(inner_steps=4, inner_batch_size=16)
    x = torch.rand(70, 256, generator=torch.Generator().manual_seed(5))
    state = algorithm.adapt(net, x, torch.arange(70) % 5, 5)
    # one statistics pass per step on its rows (70 rows in batches of at most
    # 16: five of 14 per epoch), then the whole set's once
    assert seen == [14, 14, 14, 14, 70]
    again = algorithm.adapt(net, x, torch.arange(70) % 5, 5)
    assert torch.equal(_flat(state), _flat(again))  # seeded: reproducible
    whole = conv_model.algorithm(inner_steps=4).adapt(net, x, torch.arange(70) % 5, 5)
    assert not torch.equal(_flat(state), _flat(whole))


def test_minibatch_regression_takes_targets_with_their_rows():
    algorithm, net, x, y, full = _sine_regression(chunk_rows=9)
    g = torch.Generator().manual_seed(6)
    batches = [torch.randperm(50, generator=g) for _ in range(2)]
    shuffled = chunked.chunked_inner_loop(
        algorithm, net, _leaves(net), x, y[None], 1, 9, [], batches=batches
    )
    torch.testing.assert_close(_flat(shuffled), _flat(full), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "method, regression",
    [(m, False) for m in GRADIENT_METHODS] + [("maml", True), ("anil", True)],
)
def test_minibatch_divergence_check_compares_whole_set_losses(
    method, regression, monkeypatch
):
    # check_adaptation warns when the last loss (the whole set's, after the
    # last step) is above the first: the first must be the whole set's too,
    # not the first mini-batch's (they differ when the head does not start
    # with equal class rows: Proto-MAML's prototypes, a regression head)
    x, y = _support()
    if regression:
        y = torch.sin(3 * x[:, 0])
    seen = []
    monkeypatch.setattr(
        inner_loop, "check_adaptation", lambda m, losses, t: seen.append(losses)
    )
    for size in (None, 8):
        algorithm = make_algorithm(
            method, inner_lr=0.05, inner_steps=3, regression=regression,
            inner_batch_size=size,
        )  # fmt: skip
        algorithm.adapt(_tiny_net(algorithm), x, y, 1 if regression else 3)
    whole, mini = seen
    assert len(mini) == len(whole) == 4
    torch.testing.assert_close(mini[0], whole[0], rtol=1e-10, atol=1e-12)
    assert not torch.equal(mini[-1], whole[-1])  # the steps did differ
