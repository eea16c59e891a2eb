"""Closed-form heads (skmeta.meta.algorithms.closed_form) against scikit-learn."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.svm import LinearSVC

from skmeta.meta.algorithms.closed_form import (
    one_vs_rest_targets,
    ridge_head,
    svm_head,
)

# (rows, features, classes): fewer rows than features (the n x n Woodbury
# systems) and more (the dim x dim ones)
SHAPES = [(12, 20, 3), (40, 6, 4), (15, 15, 5)]


def _data(n, dim, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    centres = rng.standard_normal((n_classes, dim))
    X = centres[y] + 0.8 * rng.standard_normal((n, dim))
    return X, y


def _head(solver, X, y, n_classes, value):
    weight, bias = solver(torch.tensor(X)[None], torch.tensor(y), n_classes, value)
    return weight[0].numpy(), bias[0].numpy()


def test_one_vs_rest_targets_are_plus_and_minus_one():
    targets = one_vs_rest_targets(torch.tensor([2, 0, 1]), 3, torch.float64)
    expected = [[-1, -1, 1], [1, -1, -1], [-1, 1, -1]]
    np.testing.assert_array_equal(targets.numpy(), expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha", [0.1, 3.0])
def test_ridge_head_is_ridge_classifier(shape, alpha):
    X, y = _data(*shape)
    weight, bias = _head(ridge_head, X, y, shape[2], alpha)
    reference = RidgeClassifier(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(weight, reference.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(bias, reference.intercept_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        X @ weight.T + bias, reference.decision_function(X), atol=1e-9
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("C", [0.05, 1.0])
def test_svm_head_is_linear_svc(shape, C):
    X, y = _data(*shape)
    weight, bias = _head(svm_head, X, y, shape[2], C)
    reference = LinearSVC(C=C, tol=1e-10, max_iter=1_000_000).fit(X, y)
    scale = np.abs(reference.coef_).max()
    np.testing.assert_allclose(weight, reference.coef_, atol=1e-5 * scale)
    np.testing.assert_allclose(bias, reference.intercept_, atol=1e-5 * scale)


@pytest.mark.parametrize(
    "solver, sklearn_model",
    [
        (ridge_head, RidgeClassifier(alpha=0.5)),
        (svm_head, LinearSVC(C=0.5, tol=1e-10, max_iter=1_000_000)),
    ],
)
def test_two_classes_are_the_binary_classifier_and_its_negation(solver, sklearn_model):
    # scikit-learn fits one classifier for classes_[1]; the heads keep a row per
    # class, and both problems are symmetric under y -> -y, w -> -w
    X, y = _data(14, 5, 2)
    weight, bias = _head(solver, X, y, 2, 0.5)
    reference = sklearn_model.fit(X, y)
    coef = np.ravel(reference.coef_)  # (n_features,) or (1, n_features)
    intercept = np.ravel(reference.intercept_)[0]
    np.testing.assert_allclose(weight, [-coef, coef], atol=1e-6)
    np.testing.assert_allclose(bias, [-intercept, intercept], atol=1e-6)
    decision = X @ weight[1] + bias[1]
    np.testing.assert_allclose(decision, reference.decision_function(X), atol=1e-6)


@pytest.mark.parametrize("solver", [ridge_head, svm_head])
def test_tasks_are_solved_independently(solver):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(3, 10, 7, generator=g, dtype=torch.float64)
    labels = torch.arange(10) % 3
    weight, bias = solver(features, labels, 3, 0.7)
    for t in range(3):
        w, b = solver(features[t : t + 1], labels, 3, 0.7)
        torch.testing.assert_close(weight[t], w[0])
        torch.testing.assert_close(bias[t], b[0])


@pytest.mark.parametrize("solver", [ridge_head, svm_head])
@pytest.mark.parametrize("n", [6, 16])  # Woodbury, and the dim x dim system
def test_gradients_match_finite_differences(solver, n):
    g = torch.Generator().manual_seed(1)
    features = torch.randn(2, n, 8, generator=g, dtype=torch.float64)
    labels = torch.arange(n) % 3
    query = torch.randn(5, 8, generator=g, dtype=torch.float64)

    def scores(x):
        weight, bias = solver(x, labels, 3, 0.3)
        return query @ weight.mT + bias.unsqueeze(-2)

    assert torch.autograd.gradcheck(scores, (features.requires_grad_(),))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_svm_optimum_satisfies_its_optimality_conditions(scale):
    # the gradient of the primal objective vanishes at the returned head, also
    # for large features (an ill-conditioned Hessian) and with no warning
    X, y = _data(30, 4, 3, seed=2)
    X = scale * X
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weight, bias = _head(svm_head, X, y, 3, 2.0)
    w = np.hstack([weight, bias[:, None]])
    Xa = np.hstack([X, np.ones((30, 1))])
    targets = 2.0 * (y[:, None] == np.arange(3)) - 1
    residual = np.maximum(0, 1 - targets * (Xa @ w.T))
    gradient = w - 2 * 2.0 * (targets * residual).T @ Xa
    np.testing.assert_allclose(gradient, 0, atol=1e-9 * scale)
    assert (residual > 0).any() and (residual == 0).any()  # both kinds of rows


@pytest.mark.parametrize("solver, name", [(ridge_head, "alpha"), (svm_head, "C")])
@pytest.mark.parametrize("value", [0, -1.0, "1", True])
def test_bad_regularisation_is_refused(solver, name, value):
    with pytest.raises(ValueError, match=name):
        solver(torch.randn(1, 4, 3), torch.tensor([0, 1, 0, 1]), 2, value)


def test_svm_head_warns_when_newton_stops_short():
    X, y = _data(30, 4, 3, seed=2)
    with pytest.warns(RuntimeWarning, match="did not converge in 1 Newton") as got:
        svm_head(torch.tensor(X)[None], torch.tensor(y), 3, 2.0, max_iter=1)
    assert got[0].filename == __file__  # the caller's line, not skmeta's


@pytest.mark.parametrize("solver", [ridge_head, svm_head])
def test_non_finite_features_give_a_nan_head_not_an_error(solver):
    features = torch.randn(2, 6, 3, dtype=torch.float64)
    features[1, 2, 0] = float("nan")
    weight, bias = solver(features, torch.arange(6) % 2, 2, 1.0)
    assert weight.shape == (2, 2, 3) and bias.shape == (2, 2)
    assert torch.isnan(weight).all() and torch.isnan(bias).all()
