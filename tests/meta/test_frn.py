"""Feature Map Reconstruction Networks (skmeta.meta.algorithms.frn)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from embedding_helpers import (
    check_partial_fit_equals_fit,
    check_saved_and_loaded,
    check_transductive_refused,
    deployed_loss,
    learnt_accuracy,
    linear_net,
)
from sklearn.linear_model import Ridge

from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.algorithms.frn import (
    local_features,
    reconstruction_logits,
    reconstruction_residuals,
)


def _net(algorithm, dim=8, seed=0):
    net = linear_net(algorithm, dim, seed)
    with torch.no_grad():  # away from the initial values, to see each act
        net.extra["frn_alpha"].fill_(0.3)
        net.extra["frn_beta"].fill_(-0.2)
        net.extra["frn_scale"].fill_(1.7)
    return net


def _batch(seed=1, n_tasks=2, dim=8):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(n_tasks, 6, dim, generator=g),
        torch.tensor([0, 0, 1, 1, 2, 2]),
        torch.randn(n_tasks, 9, dim, generator=g),
        torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2]),  # not class-major
        n_way=3,
    )


def test_local_features_read_a_channel_major_map():
    maps = torch.randn(5, 3, 2, 2)  # (rows, channels, height, width)
    local = local_features(maps.flatten(1), 3)
    assert local.shape == (5, 4, 3)
    torch.testing.assert_close(local[:, 1], maps[:, :, 0, 1])


@pytest.mark.parametrize("n_rows", [2, 7])  # fewer and more rows than channels
def test_reconstruction_error_is_ridge_regressions(n_rows):
    """Each query location reconstructed from a class's support locations by
    scikit-learn's ridge regression (no intercept, penalty ``lam``), scaled
    by ``rho``: the mean squared error over the query's locations."""
    channels, r = 4, 3
    support = torch.randn(n_rows, channels, dtype=torch.float64)
    queries = torch.randn(2, r, channels, dtype=torch.float64)
    alpha, beta, scale = (torch.tensor(v, dtype=torch.float64) for v in (0.4, 0.1, 2))
    lam = n_rows / channels * np.exp(0.4)
    expected = np.empty((2, 1))
    for i, query in enumerate(queries.numpy()):
        errors = []
        for location in query:
            # the location as a combination of the support rows: samples are
            # its channels, features the support rows
            ridge = Ridge(alpha=lam, fit_intercept=False).fit(
                support.numpy().T, location
            )
            rebuilt = np.exp(0.1) * support.numpy().T @ ridge.coef_
            errors.append(((rebuilt - location) ** 2).sum())
        expected[i] = -2 * np.mean(errors)
    residuals = reconstruction_residuals(support[None], alpha, beta)
    logits = reconstruction_logits(queries, residuals, scale)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-8)


def test_errors_and_their_gram_form_agree():
    """Few classes of few locations: the errors themselves; many: the
    Gram form. Both are the mean squared error."""
    support = torch.randn(6, 2, 3, dtype=torch.float64)  # 6 classes, m=2, c=3
    residuals = reconstruction_residuals(support, torch.tensor(0.2), torch.tensor(0.1))
    queries = torch.randn(5, 2, 3, dtype=torch.float64)  # r=2
    direct = -((queries[:, None] @ residuals[None]) ** 2).sum((-2, -1)) / 2
    gram_form = reconstruction_logits(queries, residuals, torch.tensor(1.0))
    assert residuals.shape[0] * 2 >= 3  # the Gram form ran
    torch.testing.assert_close(gram_form, direct)
    errors_form = reconstruction_logits(queries, residuals[:1], torch.tensor(1.0))
    assert 1 * 2 < 3  # the errors ran
    torch.testing.assert_close(errors_form, direct[:, :1])


@pytest.mark.parametrize("channels", [2, 4])  # m = 2 x 4 / channels locations
def test_meta_training_loss_is_the_deployed_prediction(channels):
    algorithm = make_algorithm("frn", channels=channels)
    net, batch = _net(algorithm), _batch()
    loss, _ = algorithm.loss(net, batch)
    assert loss.item() == pytest.approx(
        deployed_loss(algorithm, net, batch, F.cross_entropy), rel=1e-5
    )


def test_the_loss_reaches_every_learnt_number():
    algorithm = make_algorithm("frn", channels=4)
    net = _net(algorithm)
    algorithm.loss(net, _batch())[0].backward()
    for name, value in net.extra.items():
        assert value.grad is not None and value.grad.abs() > 0, name
    assert net.backbone.weight.grad.abs().sum() > 0


def test_a_class_without_rows_takes_no_part_in_the_others_scores():
    algorithm = make_algorithm("frn", channels=4)
    net = _net(algorithm)
    support_x, query_x = torch.randn(7, 8), torch.randn(5, 8)
    support_y = torch.tensor([0, 1, 2, 0, 1, 2, 2])  # unequal shots
    three = algorithm.predict(
        net, algorithm.adapt(net, support_x, support_y, 3), query_x
    )
    shifted = torch.tensor([0, 2, 3, 0, 2, 3, 3])  # class 1 without rows
    four = algorithm.predict(net, algorithm.adapt(net, support_x, shifted, 4), query_x)
    torch.testing.assert_close(four[:, [0, 2, 3]], three)


def test_each_class_has_its_own_ridge_penalty_and_an_empty_one_none():
    """Unequal shots: each class's ``lam`` follows its own rows
    (scikit-learn's ridge per class); a class without rows scores minus the
    query's mean squared norm (nothing reconstructed)."""
    algorithm = make_algorithm("frn", channels=4)
    net = _net(algorithm)
    support_x, query_x = torch.randn(4, 8), torch.randn(3, 8)
    support_y = torch.tensor([0, 0, 0, 2])  # 3 shots, none, 1 shot
    with torch.no_grad():
        state = algorithm.adapt(net, support_x, support_y, 3)
        scores = algorithm.predict(net, state, query_x).numpy()
        S = local_features(net(support_x).double(), 4).numpy()  # (4, 2, 4)
        Q = local_features(net(query_x).double(), 4).numpy()
    alpha, beta, scale = 0.3, -0.2, 1.7
    for c, rows in ((0, S[:3].reshape(-1, 4)), (2, S[3])):
        lam = len(rows) / 4 * np.exp(alpha)
        for i, query in enumerate(Q):
            error = 0.0
            for location in query:
                coef = Ridge(alpha=lam, fit_intercept=False).fit(rows.T, location).coef_
                error += ((np.exp(beta) * rows.T @ coef - location) ** 2).sum()
            assert scores[i, c] == pytest.approx(-scale * error / 2, rel=1e-7)
    np.testing.assert_allclose(scores[:, 1], -scale * (Q**2).sum((1, 2)) / 2)


def test_mixed_precision_keeps_the_solves_in_float32():
    algorithm = make_algorithm("frn", channels=4)
    net, batch = _net(algorithm), _batch(n_tasks=1)
    loss32, _ = algorithm.loss(net, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss16, _ = algorithm.loss(net, batch)
    assert loss16.dtype == torch.float32
    # bfloat16 embeddings (8 bits of mantissa) move the loss a little; 16-bit
    # solves took the errors to nothing (every class alike: ln 3)
    assert loss16.item() == pytest.approx(loss32.item(), rel=0.05)


def test_the_conv4_is_read_as_its_map_and_other_backbones_as_one_location(blobs):
    from skmeta import MetaFeatureExtractor

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 144), dtype=np.float32), np.repeat(np.arange(8), 5)
    conv = MetaFeatureExtractor(
        method="frn",
        input_shape=(1, 12, 12),
        backbone="conv4",
        backbone_params={"downsample": ["strided", "none"], "hidden_channels": 6},
        max_iter=2,
        n_way=3,
        k_shot=1,
        n_query=1,
        random_state=0,
    ).fit(X, y)
    algorithm, net = make_algorithm("frn"), conv.meta_model_.network("cpu")
    assert algorithm.map_channels(net, 6 * 36) == 6  # 6x6 locations of 6
    images = torch.randn(2, 1, 12, 12)
    with torch.no_grad():  # the flat embedding is the map, channel by channel
        maps = net.backbone.features(images).contiguous()
        local = local_features(net.backbone(images), 6)
    torch.testing.assert_close(local, maps.flatten(2).mT)
    X, y = blobs
    mlp = MetaFeatureExtractor(method="frn", max_iter=2, random_state=0).fit(X, y)
    assert algorithm.map_channels(mlp.meta_model_.network("cpu"), 64) == 64


def test_a_width_that_is_no_map_of_the_channels_is_refused():
    with pytest.raises(ValueError, match="channels=3.*8 features"):
        linear_net(make_algorithm("frn", channels=3), dim=8)


@pytest.mark.parametrize("channels", [0, -2, True, "4", 2.5])
def test_channels_is_checked(channels):
    with pytest.raises(ValueError, match="channels"):
        make_algorithm("frn", channels=channels)


def test_partial_fit_equals_fit_on_the_rows_so_far(blobs):
    check_partial_fit_equals_fit(blobs, "frn")


def test_meta_training_learns_new_classes(blobs):
    model, accuracy = learnt_accuracy(blobs, "frn")
    assert model.config["method_params"] == {"channels": None}
    assert accuracy > 0.8


def test_estimator_takes_it_by_name_and_saves_it(blobs, tmp_path):
    loaded = check_saved_and_loaded(
        blobs, tmp_path / "frn.safetensors", "frn", {"channels": 16}
    )
    assert loaded.config["method_params"] == {"channels": 16}


def test_transductive_deployment_is_refused(blobs):
    check_transductive_refused(blobs, "frn")
