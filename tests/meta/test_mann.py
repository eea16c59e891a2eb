"""Memory-augmented neural network (skmeta.meta.algorithms.mann)."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.algorithms.lrua import least_used, lrua_read, lrua_write
from skmeta.meta.net import MetaNet

SMALL = {"memory_slots": 8, "slot_width": 6, "controller_size": 16, "read_heads": 2}


def _net(algorithm, dim=4, n_way=3, seed=0):
    torch.manual_seed(seed)
    net = MetaNet(nn.Linear(dim, dim), (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, dim, n_way).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def _batch(n_tasks=2, n_way=3, k_shot=2, n_query=3, dim=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(n_tasks, n_way * k_shot, dim, generator=g),
        torch.arange(n_way).repeat_interleave(k_shot),
        torch.randn(n_tasks, n_way * n_query, dim, generator=g),
        torch.arange(n_way).repeat_interleave(n_query),
        n_way=n_way,
    )


# -- memory access by hand ----------------------------------------------------
def test_least_used_marks_the_n_least_used_slots_ties_to_the_lowest():
    usage = torch.tensor([[0.5, 0.1, 0.1, 0.9], [0.0, 0.0, 0.0, 0.0]])
    lu = least_used(usage, 2)
    assert lu.shape == (2, 2, 4)
    assert lu[0].argmax(-1).tolist() == [1, 2]
    assert lu[1].argmax(-1).tolist() == [0, 1]
    assert torch.equal(lu.sum(-1), torch.ones(2, 2))


def test_write_interpolates_last_read_and_least_used_after_zeroing_it():
    memory = torch.tensor([[[1.0, 1.0], [3.0, -1.0], [2.0, 0.0]]])  # 3 slots
    usage = torch.tensor([[0.2, 0.0, 0.5]])  # slot 1 least used
    last_read = torch.tensor([[[0.0, 0.0, 1.0]]])  # one head, read slot 2
    gates = torch.tensor([[0.0]])  # sigmoid 0.5
    adds = torch.tensor([[[1.0, 2.0]]])
    new, weights = lrua_write(memory, usage, last_read, gates, adds)
    torch.testing.assert_close(weights, torch.tensor([[[0.0, 0.5, 0.5]]]))
    expected = torch.tensor([[[1.0, 1.0], [0.5, 1.0], [2.5, 1.0]]])  # slot 1 zeroed
    torch.testing.assert_close(new, expected)


def test_read_is_a_softmax_of_scaled_cosine_similarities():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]])
    keys = torch.tensor([[[3.0, 0.0]]])
    strengths = torch.tensor([[2.0]])
    reads, weights = lrua_read(memory, keys, strengths)
    cosines = torch.tensor([1.0, 0.0, 2**-0.5])
    expected = torch.softmax(2.0 * cosines, 0)
    torch.testing.assert_close(weights[0, 0], expected)
    torch.testing.assert_close(reads[0, 0], expected @ memory[0])


def test_writes_to_least_used_slots_fill_memory_then_reuse_the_oldest():
    gamma, slots = 0.9, 3
    memory, usage = torch.zeros(1, slots, 1), torch.zeros(1, slots)
    no_read = torch.zeros(1, 1, slots)
    written = []
    for step in range(5):
        adds = torch.full((1, 1, 1), float(step + 1))
        memory, weights = lrua_write(
            memory, usage, no_read, torch.tensor([[-torch.inf]]), adds
        )
        usage = gamma * usage + weights.sum(1)
        written.append(int(weights[0, 0].argmax()))
    # slots 0, 1, 2 in turn; then the least recently used: 0 (usage gamma^2), 1
    assert written == [0, 1, 2, 0, 1]
    # overwritten slots hold only their last value (zeroed before the write)
    assert memory[0, :, 0].tolist() == [4.0, 5.0, 3.0]


# -- the step and the loss ----------------------------------------------------
def test_usage_decays_and_adds_the_reads_and_writes():
    algorithm = make_algorithm("mann", usage_decay=0.8, **SMALL)
    net = _net(algorithm)
    x, labels = torch.randn(2, 4), F.one_hot(torch.tensor([0, 2]), 3).float()
    state = algorithm.initial_state(2, x)
    state = state._replace(usage=torch.rand(2, 8))
    with torch.no_grad():
        _, new = algorithm.write_step(net, x, labels, state)
        *_, gates, _ = algorithm._controller(net, x, labels, state)
        _, write_weights = lrua_write(
            state.memory, state.usage, state.read_weights, gates, torch.zeros(2, 2, 6)
        )
    expected = 0.8 * state.usage + new.read_weights.sum(1) + write_weights.sum(1)
    torch.testing.assert_close(new.usage, expected)
    torch.testing.assert_close(new.read_weights.sum(-1), torch.ones(2, 2))


def test_loss_is_the_sequence_and_query_cross_entropy_of_the_shuffled_support():
    algorithm = make_algorithm("mann", **SMALL)
    net = _net(algorithm)
    batch = _batch()
    torch.manual_seed(5)
    loss, metrics = algorithm.loss(net, batch)
    torch.manual_seed(5)
    order = torch.rand(2, 6).argsort(1)
    logits, queries = [], []
    with torch.no_grad():
        for t in range(2):  # task by task: batching over tasks changes nothing
            # centred on the mean of the class means (balanced: of the rows)
            centre = net(batch.support_x[t]).mean(0)
            support = (net(batch.support_x[t][order[t]]) - centre)[None]
            labels = batch.support_y[order[t]][None]
            out, state = algorithm.read_support(net, support, labels)
            query = (net(batch.query_x[t]) - centre)[None]
            query = algorithm.query_step(net, query, state)[0]
            logits += [out[0], query]
            queries.append(query)
    targets = torch.cat(
        [batch.support_y[order[0]], batch.query_y, batch.support_y[order[1]]]
        + [batch.query_y]
    )
    expected = F.cross_entropy(torch.cat(logits), targets)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    accuracy = (torch.cat(queries).argmax(1) == batch.query_y.repeat(2)).float()
    assert metrics["accuracy"] == pytest.approx(accuracy.mean().item())
    loss.backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_adapt_and_predict_read_the_support_then_each_query_read_only():
    algorithm = make_algorithm("mann", **SMALL)
    net = _net(algorithm)
    support_x, support_y = torch.randn(6, 4), torch.tensor([0, 1, 2, 2, 1, 0])
    state = algorithm.adapt(net, support_x, support_y, 3)
    queries = torch.randn(9, 4)
    whole = algorithm.predict(net, state, queries)
    assert whole.shape == (9, 3)
    # each row alone, and in other company, scores the same
    alone = torch.cat([algorithm.predict(net, state, q[None]) for q in queries])
    # float32 layers may round by batch size (CPU-dependent kernels)
    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(whole, alone, **tol)
    mixed = algorithm.predict(net, state, torch.cat([queries[:4], torch.randn(5, 4)]))
    torch.testing.assert_close(whole[:4], mixed[:4], **tol)
    chunked = algorithm.predict(net, state, queries, batch_size=2)
    torch.testing.assert_close(whole, chunked, **tol)
    # the memory state is what the support sequence left: queries wrote nothing
    again = algorithm.predict(net, state, queries)
    torch.testing.assert_close(whole, again)


def test_adaptation_is_deterministic_and_takes_fewer_classes_than_trained():
    algorithm = make_algorithm("mann", **SMALL)
    net = _net(algorithm, n_way=5)
    support_x, support_y = torch.randn(4, 4), torch.tensor([0, 1, 1, 0])
    first = algorithm.adapt(net, support_x, support_y, 2)
    second = algorithm.adapt(net, support_x, support_y, 2)
    queries = torch.randn(3, 4)
    out = algorithm.predict(net, first, queries)
    assert out.shape == (3, 2)
    torch.testing.assert_close(out, algorithm.predict(net, second, queries))


def test_the_controller_sees_projected_layer_normalised_embeddings():
    """Embeddings are layer-normalised, mapped to `input_width` features and
    normalised again: scaling every embedding changes no prediction."""
    algorithm = make_algorithm("mann", **SMALL)
    net = _net(algorithm)
    net.backbone = nn.Identity()
    support_x, support_y = torch.randn(6, 4), torch.tensor([0, 1, 2, 2, 1, 0])
    queries = torch.randn(5, 4)
    logits = algorithm.predict(
        net, algorithm.adapt(net, support_x, support_y, 3), queries
    )
    assert net.extra["input_weight"].shape == (64, 4)  # input_width x dim
    state = algorithm.adapt(net, 3 * support_x, support_y, 3)
    moved = algorithm.predict(net, state, 3 * queries)
    torch.testing.assert_close(moved, logits, rtol=1e-4, atol=1e-4)
    # a scale per feature is no such change: the predictions move
    stretched = queries * torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert not torch.allclose(algorithm.predict(net, state, stretched), logits)


def test_episodes_are_centred_on_the_mean_of_the_support_class_means():
    """Moving every embedding by one vector changes no prediction, and an
    imbalanced support set is centred on its classes, not on its rows."""
    algorithm = make_algorithm("mann", **SMALL)
    net = _net(algorithm)
    net.backbone = nn.Identity()
    support_x, support_y = torch.randn(6, 4), torch.tensor([0, 1, 2, 2, 2, 2])
    queries = torch.randn(5, 4)
    state = algorithm.adapt(net, support_x, support_y, 3)
    class_means = torch.stack([support_x[support_y == c].mean(0) for c in range(3)])
    torch.testing.assert_close(state["centre"], class_means.mean(0))
    logits = algorithm.predict(net, state, queries)
    shift = torch.tensor([5.0, -3.0, 0.5, 2.0])
    moved = algorithm.adapt(net, support_x + shift, support_y, 3)
    torch.testing.assert_close(
        algorithm.predict(net, moved, queries + shift), logits, rtol=1e-4, atol=1e-4
    )
    # the same in meta-training's loss, where a layer norm alone would not do
    batch = _batch()
    torch.manual_seed(3)
    loss, _ = algorithm.loss(net, batch)
    shifted = dataclasses.replace(
        batch, support_x=batch.support_x + shift, query_x=batch.query_x + shift
    )
    torch.manual_seed(3)
    assert algorithm.loss(net, shifted)[0].item() == pytest.approx(
        loss.item(), rel=1e-4
    )


def test_more_classes_than_trained_ways_is_refused():
    algorithm = make_algorithm("mann", **SMALL)
    net = _net(algorithm, n_way=3)
    with pytest.raises(ValueError, match="at most 3 classes.*n_way >= 4"):
        algorithm.adapt(net, torch.randn(4, 4), torch.arange(4), 4)


@pytest.mark.parametrize(
    "bad",
    [
        {"memory_slots": 0},
        {"slot_width": 2.5},
        {"controller_size": True},
        {"read_heads": 9, "memory_slots": 8},
        {"usage_decay": 0.0},
        {"usage_decay": 1.5},
    ],
)
def test_settings_are_checked(bad):
    name = next(iter(bad)) if "read_heads" not in bad else "read_heads"
    with pytest.raises(ValueError, match=name):
        make_algorithm("mann", **bad)


def test_meta_training_lowers_the_loss_on_an_easy_problem():
    """2-way 1-shot episodes of well-separated random class centres."""
    algorithm = make_algorithm("mann", **SMALL)
    dim, n_way, n_tasks = 4, 2, 16
    torch.manual_seed(0)
    net = MetaNet(nn.Identity(), (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, dim, n_way).items():
        net.extra[name] = nn.Parameter(value.clone())
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses, accuracies = [], []
    for _ in range(300):
        centres = torch.randn(n_tasks, n_way, dim)
        batch = TaskBatch(
            centres + 0.1 * torch.randn(n_tasks, n_way, dim),
            torch.arange(n_way),
            centres.repeat_interleave(2, 1) + 0.1 * torch.randn(n_tasks, 4, dim),
            torch.arange(n_way).repeat_interleave(2),
            n_way,
        )
        loss, metrics = algorithm.loss(net, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accuracies.append(metrics["accuracy"])
    assert np.mean(losses[-30:]) < 0.8 * np.mean(losses[:30])
    assert np.mean(accuracies[-30:]) > 0.7  # chance: 0.5


# -- through the estimators ---------------------------------------------------
@pytest.fixture(scope="module")
def five_classes(blobs):
    X, y = blobs
    keep = y < 5
    return X[keep], y[keep]


def test_estimator_round_trip_and_saved_model(five_classes, blobs, tmp_path):
    from skmeta import FewShotClassifier, MetaModel, available_methods

    assert "mann" in available_methods()
    X, y = five_classes
    clf = FewShotClassifier(
        method="mann",
        method_params=SMALL,
        n_way=5,
        k_shot=2,
        n_query=3,
        max_iter=5,
        random_state=0,
    ).fit(X, y)
    model = clf.meta_model_
    assert model.config["method_params"] == {
        **SMALL,
        "usage_decay": 0.95,
        "input_width": 64,
    }
    assert model.state["extra.output_weight"].shape[0] == 5
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert set(clf.predict(X)) <= set(y)
    # saved and loaded, the model adapts and predicts the same
    model.save(tmp_path / "mann")
    loaded = MetaModel.load(tmp_path / "mann")
    X_all, y_all = blobs
    support = np.isin(y_all, [20, 21, 22])
    first = np.concatenate([np.flatnonzero(y_all == c)[:2] for c in (20, 21, 22)])
    a = FewShotClassifier(pretrained=model).fit(X_all[first], y_all[first])
    b = FewShotClassifier(pretrained=loaded).fit(X_all[first], y_all[first])
    np.testing.assert_allclose(
        a.decision_function(X_all[support]),
        b.decision_function(X_all[support]),
        rtol=1e-4,
        atol=1e-7,
    )
    assert set(a.classes_) == {20, 21, 22}


def test_estimator_refuses_more_classes_than_the_model_was_trained_on(five_classes):
    from skmeta import FewShotClassifier, MetaFeatureExtractor

    X, y = five_classes
    model = (
        MetaFeatureExtractor(
            method="mann",
            method_params=SMALL,
            n_way=3,
            k_shot=2,
            n_query=3,
            max_iter=3,
            random_state=0,
        )
        .fit(X, y)
        .meta_model_
    )
    clf = FewShotClassifier(pretrained=model)
    clf.fit(X[y < 3], y[y < 3])  # up to 3 classes: fine
    with pytest.raises(ValueError, match="at most 3 classes"):
        clf.fit(X, y)


def test_classifier_with_more_classes_than_n_way_is_refused_before_meta_training():
    import time

    import numpy as np

    from skmeta import FewShotClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    tic = time.perf_counter()
    with pytest.raises(ValueError, match="at most the n_way=3 classes"):
        FewShotClassifier(method="mann", n_way=3, max_iter=10_000).fit(X, y)
    assert time.perf_counter() - tic < 30  # no 10,000 iterations first


@pytest.mark.slow
def test_meta_trained_on_glyph_images_it_classifies_novel_glyphs():
    """Real pixels through the estimators (about 2 minutes on 2 cores): MANN
    stayed at chance on such images until episodes were centred (43% here
    after 1,200 iterations; 20.8% at 9e1c117, before the centring)."""
    from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score
    from skmeta._glyphs import make_glyphs

    X, y = make_glyphs(n_classes=300, n_samples_per_class=20, random_state=0)
    train, novel = y < 250, y >= 250
    extractor = MetaFeatureExtractor(
        method="mann",
        backbone="conv4_strided",
        input_shape=(1, 28, 28),
        n_way=5,
        k_shot=5,
        n_query=5,
        meta_batch_size=4,
        max_iter=1200,
        learning_rate=3e-3,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="max_iter"):  # still learning
        extractor.fit(X[train], y[train])
    score = episodic_score(
        FewShotClassifier(pretrained=extractor.meta_model_),
        X[novel],
        y[novel],
        n_way=5,
        k_shot=5,
        n_query=5,
        n_episodes=50,
        random_state=0,
    )
    assert score.mean > 0.3  # chance: 0.2


def test_support_sets_far_longer_than_meta_trainings_warn(five_classes):
    """Meta-trained on 3-way 1-shot episodes (3 rows), MANN collapsed to one
    class on 50 shots a class; support sets beyond 10 times those of its
    episodes warn, naming the sizes."""
    import warnings

    from skmeta import FewShotClassifier, MetaFeatureExtractor
    from skmeta.meta.algorithms import AdaptationWarning

    X, y = five_classes
    settings = dict(method="mann", method_params=SMALL, n_way=3, k_shot=1)
    model = (
        MetaFeatureExtractor(**settings, n_query=3, max_iter=3, random_state=0)
        .fit(X, y)
        .meta_model_
    )
    rows = np.concatenate([np.flatnonzero(y == c)[:10] for c in range(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdaptationWarning)
        FewShotClassifier(pretrained=model).fit(X[rows], y[rows])  # 30 rows: fine
    rows = np.concatenate([np.flatnonzero(y == c)[:11] for c in range(3)])
    with pytest.warns(AdaptationWarning, match=r"33 rows, more than 10 times the 3"):
        FewShotClassifier(pretrained=model).fit(X[rows], y[rows])
