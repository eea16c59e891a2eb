"""``best_iter_``: the iteration whose weights early stopping kept (that of
the lowest validation loss), None without early stopping."""

import warnings

import numpy as np
import pytest

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor
from skmeta.datasets import make_sinusoid_tasks

EARLY = dict(early_stopping=True, n_iter_no_change=100, random_state=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(12), 10)
    X = rng.normal(size=(120, 6)) + 1.5 * np.eye(12, 6)[y]
    return X.astype(np.float32), y


def _lowest_val_loss(history):
    """The iteration of the record of the lowest validation loss."""
    return min(history, key=lambda r: r["val_loss"])["iter"]


@pytest.mark.parametrize("cls", [FewShotClassifier, MetaFeatureExtractor])
def test_it_is_the_iteration_of_the_lowest_validation_loss(table, cls):
    est = cls(max_iter=12, n_way=3, **EARLY).fit(*table)
    assert est.best_iter_ == _lowest_val_loss(est.history_)
    assert est.best_iter_ == est.meta_model_.config["training"]["best_iter"]
    assert isinstance(est.best_iter_, int) and 0 < est.best_iter_ <= est.n_iter_


def test_a_regressors_too():
    X, y, groups = make_sinusoid_tasks(40, 10, random_state=0)
    reg = FewShotRegressor(
        method="anil", k_shot=3, n_query=3, max_iter=5, meta_batch_size=2, **EARLY
    )
    reg.fit(X, y, groups=groups)
    assert reg.best_iter_ == _lowest_val_loss(reg.history_)


def test_none_without_early_stopping_or_meta_training(table):
    clf = FewShotClassifier(max_iter=3, random_state=0).fit(*table)
    assert clf.best_iter_ is None
    early = FewShotClassifier(max_iter=4, n_way=3, **EARLY).fit(*table)
    reused = FewShotClassifier(pretrained=early.meta_model_).fit(*table)
    assert reused.best_iter_ is None and reused.n_iter_ == 0


def test_a_warm_start_counts_on_as_n_iter_does(table):
    clf = FewShotClassifier(max_iter=8, n_way=3, warm_start=True, **EARLY)
    first = clf.fit(*table).n_iter_
    clf.fit(*table)
    assert first < clf.best_iter_ <= clf.n_iter_
    assert clf.best_iter_ == _lowest_val_loss(clf.history_[-8:])


def test_an_extractors_partial_fit_sets_it(table):
    X, y = table
    ext = MetaFeatureExtractor(max_iter=6, n_way=3, **EARLY)
    ext.partial_fit(X, y)
    assert ext.best_iter_ == ext.meta_model_.config["training"]["best_iter"]
    ext.set_params(early_stopping=False).partial_fit(X, y)
    assert ext.best_iter_ is None
