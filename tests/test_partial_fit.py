"""partial_fit: online adaptation of FewShotClassifier, online meta-training
(FTML) of MetaFeatureExtractor."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor
from skmeta.meta.train import TrainSettings, meta_train


def _novel(blobs):
    X, y = blobs
    return X[y >= 16], y[y >= 16]


def _chunks(y, rng):
    """Three chunks of a shuffled order, the first without classes 20-23."""
    order = rng.permutation(y.size)
    early = order[y[order] < 20]
    late = order[y[order] >= 20]
    return [early[:15], np.concatenate([early[15:], late[:20]]), late[20:]]


@pytest.fixture(scope="module")
def maml_model(blobs):
    X, y = blobs
    settings = TrainSettings(
        n_way=5,
        k_shot=2,
        n_query=5,
        input_shape=(10,),
        method="maml",
        method_params={"inner_steps": 2},
        max_iter=30,
        seed=0,
    )
    return meta_train(X[y < 16], y[y < 16], settings)


# -- FewShotClassifier --------------------------------------------------------
def test_protonet_partial_fit_equals_fit_on_all_rows(blob_model, blobs):
    X, y = _novel(blobs)
    online = FewShotClassifier(pretrained=blob_model)
    for rows in _chunks(y, np.random.default_rng(0)):
        online.partial_fit(X[rows], y[rows])
    whole = FewShotClassifier(pretrained=blob_model).fit(X, y)
    np.testing.assert_array_equal(online.classes_, whole.classes_)
    np.testing.assert_array_equal(online.class_count_, np.bincount(y - 16))
    for key in ("prototypes", "sums"):
        np.testing.assert_allclose(
            online.adapted_[key], whole.adapted_[key], rtol=1e-5, atol=1e-5
        )
    np.testing.assert_array_equal(online.adapted_["counts"], whole.adapted_["counts"])
    np.testing.assert_allclose(
        online.decision_function(X), whole.decision_function(X), rtol=1e-4, atol=1e-4
    )
    assert online.meta_model_ is blob_model and online.n_iter_ == 0


def test_partial_fit_after_fit_adds_shots_and_classes(blob_model, blobs):
    X, y = _novel(blobs)
    first, later = y < 20, y >= 20
    clf = FewShotClassifier(pretrained=blob_model).fit(X[first], y[first])
    assert clf.classes_.tolist() == [16, 17, 18, 19]
    clf.partial_fit(X[later], y[later])
    assert clf.classes_.tolist() == list(range(16, 24))  # grown, sorted
    whole = FewShotClassifier(pretrained=blob_model).fit(X, y)
    np.testing.assert_allclose(
        clf.predict_proba(X), whole.predict_proba(X), rtol=1e-4, atol=1e-6
    )


def test_only_the_new_rows_are_embedded(blob_model, blobs, monkeypatch):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model).fit(X[:60], y[:60])
    seen = []
    network = blob_model.inference_network("cpu")  # what ProtoNet embeds with
    original = type(network).forward
    monkeypatch.setattr(
        type(network), "forward", lambda net, x: seen.append(len(x)) or original(net, x)
    )
    clf.partial_fit(X[60:70], y[60:70])
    assert sum(seen) == 10


def test_maml_partial_fit_readapts_on_every_row(maml_model, blobs):
    X, y = _novel(blobs)
    online = FewShotClassifier(pretrained=maml_model)
    for rows in _chunks(y, np.random.default_rng(1)):
        online.partial_fit(X[rows], y[rows])
    whole = FewShotClassifier(pretrained=maml_model).fit(X, y)
    np.testing.assert_array_equal(online.classes_, whole.classes_)
    # the same adaptation, on the rows in another order: float rounding only
    np.testing.assert_allclose(
        online.decision_function(X), whole.decision_function(X), rtol=1e-4, atol=1e-4
    )
    assert online.score(X, y) == pytest.approx(whole.score(X, y), abs=0.02)
    assert online.score(X, y) > 0.5  # 8 classes: chance is 0.125


def test_maml_more_shots_do_not_hurt(maml_model, blobs):
    X, y = _novel(blobs)
    support = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(16, 24)])
    queries = np.setdiff1d(np.arange(y.size), support)
    one_shot = support.reshape(8, 5)[:, 0]
    clf = FewShotClassifier(pretrained=maml_model).partial_fit(X[one_shot], y[one_shot])
    before = clf.score(X[queries], y[queries])
    rest = support.reshape(8, 5)[:, 1:].ravel()
    after = clf.partial_fit(X[rest], y[rest]).score(X[queries], y[queries])
    assert after >= before - 0.05
    assert clf.class_count_.tolist() == [5] * 8


def test_replay_per_class_bounds_the_kept_support_rows(maml_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=maml_model, replay_per_class=3, random_state=0)
    for rows in _chunks(y, np.random.default_rng(2)):
        clf.partial_fit(X[rows], y[rows])
    assert len(clf._support) == 3 * 8
    assert clf.class_count_.sum() == y.size  # counted, though not all kept
    assert clf.score(X, y) > 0.4
    fitted = FewShotClassifier(pretrained=maml_model, replay_per_class=2).fit(X, y)
    assert len(fitted._support) == 2 * 8  # bounded from fit on


def test_replay_per_class_changed_by_set_params_resizes_the_kept_rows(
    maml_model, blobs
):
    X, y = _novel(blobs)  # 8 classes of 15 rows
    order = np.random.default_rng(0).permutation(y.size)
    chunks = np.array_split(order, 4)
    clf = FewShotClassifier(pretrained=maml_model, replay_per_class=10, random_state=0)
    clf.fit(X[chunks[0]], y[chunks[0]]).partial_fit(X[chunks[1]], y[chunks[1]])
    kept = clf._support.rows()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a lower cap: no warning
        clf.set_params(replay_per_class=2).partial_fit(X[chunks[2]], y[chunks[2]])
    assert clf._support.per_class == 2 and len(clf._support) == 2 * 8
    # each class's rows are drawn from the ones kept and the new ones
    rows = clf._support.rows()[0]
    known = np.concatenate([kept, X[chunks[2]]])
    assert all((known == row).all(axis=1).any() for row in rows)
    with pytest.warns(UserWarning, match="cannot come back"):
        clf.set_params(replay_per_class=5).partial_fit(X[chunks[3]], y[chunks[3]])
    new = np.bincount(y[chunks[3]] - 16, minlength=8)
    assert clf._support.per_class == 5
    assert len(clf._support) == np.minimum(2 + new, 5).sum() > 2 * 8  # filled up
    with pytest.warns(UserWarning, match="every row of each class, up from 5"):
        clf.set_params(replay_per_class=None).partial_fit(X, y)
    kept = np.minimum(2 + new, 5).sum() + y.size
    assert clf._support.per_class is None and len(clf._support) == kept
    assert clf.class_count_.tolist() == [30] * 8  # every row counted


def test_declared_classes_without_rows_are_never_predicted(blob_model, blobs):
    X, y = _novel(blobs)
    first = y < 19
    clf = FewShotClassifier(pretrained=blob_model)
    clf.partial_fit(X[first], y[first], classes=np.arange(16, 20))
    assert clf.classes_.tolist() == [16, 17, 18, 19]
    assert clf.class_count_[-1] == 0
    proba = clf.predict_proba(X)
    assert np.all(proba[:, -1] == 0) and 19 not in clf.predict(X)
    clf.partial_fit(X[y == 19], y[y == 19])
    assert np.mean(clf.predict(X[y == 19]) == 19) > 0.8


def test_a_first_call_with_one_class_says_to_declare_the_others(blob_model, blobs):
    X, y = _novel(blobs)
    one = y == 16
    hint = "or pass classes= listing the classes to expect"
    clf = FewShotClassifier(pretrained=blob_model)
    with pytest.raises(ValueError, match=f"got 1 class .*{hint}"):
        clf.partial_fit(X[one], y[one])
    assert not hasattr(clf, "classes_")
    clf.partial_fit(X[one], y[one], classes=[16, 17])  # as the message says
    assert clf.class_count_.tolist() == [15, 0]
    # fit, and meta-training without pretrained, need rows of 2 classes
    for call in (
        lambda: FewShotClassifier(pretrained=blob_model).fit(X[one], y[one]),
        lambda: FewShotClassifier().partial_fit(X[one], y[one]),
    ):
        with pytest.raises(ValueError, match="got 1 class") as error:
            call()
        assert "classes=" not in str(error.value)


def test_a_failed_call_changes_nothing_and_settings_are_read_anew(maml_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=maml_model).fit(X[y < 20], y[y < 20])
    scores = clf.decision_function(X)
    clf.set_params(inner_lr=1e30)  # diverges: AdaptationDiverged
    with pytest.raises(ValueError, match="inner_lr"):
        clf.partial_fit(X[y >= 20], y[y >= 20])
    assert clf.classes_.tolist() == [16, 17, 18, 19]
    assert clf.class_count_.sum() == (y < 20).sum()
    clf.set_params(inner_lr=None)
    np.testing.assert_array_equal(clf.decision_function(X), scores)
    clf.set_params(inner_steps=1)  # read at each call
    clf.partial_fit(X[y >= 20], y[y >= 20])
    whole = FewShotClassifier(pretrained=maml_model, inner_steps=1).fit(X, y)
    np.testing.assert_allclose(
        clf.decision_function(X), whole.decision_function(X), rtol=1e-4, atol=1e-4
    )


def test_settings_that_partial_fit_cannot_honour_are_refused(
    blob_model, maml_model, blobs
):
    """ProtoNet's per-class sums were adapted with fit's feature_norm, and
    partial_fit continues fit's pretrained model: changing either is refused
    (it left the earlier classes never predicted, or was ignored)."""
    X, y = _novel(blobs)
    early, late = y < 20, y >= 20
    clf = FewShotClassifier(pretrained=blob_model).partial_fit(X[early], y[early])
    clf.set_params(method_params={"feature_norm": "cl2n"})
    with pytest.raises(ValueError, match=r"feature_norm=None -> 'cl2n'.*Call fit"):
        clf.partial_fit(X[late], y[late])
    assert clf.classes_.tolist() == [16, 17, 18, 19]  # unchanged
    clf.set_params(method_params=None, pretrained=maml_model)
    with pytest.raises(ValueError, match="pretrained changed since fit"):
        clf.partial_fit(X[late], y[late])
    clf.set_params(pretrained=blob_model).partial_fit(X[late], y[late])
    whole = FewShotClassifier(pretrained=blob_model).fit(X, y)
    np.testing.assert_allclose(
        clf.decision_function(X), whole.decision_function(X), rtol=1e-4, atol=1e-4
    )
    # fit's own settings, kept, are accepted
    cl2n = {"feature_norm": "cl2n"}
    fitted = FewShotClassifier(pretrained=blob_model, method_params=cl2n).fit(
        X[early], y[early]
    )
    fitted.partial_fit(X[late], y[late])  # the same settings: accepted


def test_bad_labels_are_refused(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model)
    with pytest.raises(ValueError, match="classes= does not list"):
        clf.partial_fit(X, y, classes=[16, 17])
    clf.partial_fit(X[:30], y[:30])
    with pytest.raises(ValueError, match="strings"):
        clf.partial_fit(X[:3], np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:3, :-1], y[:3])


def test_first_call_without_pretrained_meta_trains_once(blobs):
    X, y = blobs
    clf = FewShotClassifier(max_iter=20, random_state=0)
    clf.partial_fit(X[y < 16], y[y < 16])
    model = clf.meta_model_
    assert clf.n_iter_ == 20
    clf.partial_fit(*_novel(blobs))
    assert clf.meta_model_ is model and clf.n_iter_ == 20
    assert clf.classes_.tolist() == list(range(24))


# -- MetaFeatureExtractor -----------------------------------------------------
def _class_batch(rng, first, active, noisy, n_classes=12, n=30, noise=3.0):
    """Classes apart along the `active` features; the `noisy` ones vary a lot
    within each class, so a network trained on this batch alone learns to
    ignore them."""
    centers = np.zeros((n_classes, 8))
    centers[:, active] = rng.normal(0, 3.0, (n_classes, len(active)))
    y = np.repeat(np.arange(n_classes), n)
    X = centers[y] + rng.normal(0, 0.5, (y.size, 8))
    X[:, noisy] += rng.normal(0, noise, (y.size, len(noisy)))
    return X.astype(np.float32), y + first


def _accuracy(model, X, y):
    """Nearest prototype of 5 shots per class, on the other rows."""
    support = np.concatenate([np.flatnonzero(y == c)[:5] for c in np.unique(y)])
    queries = np.setdiff1d(np.arange(y.size), support)
    clf = FewShotClassifier(pretrained=model).fit(X[support], y[support])
    return clf.score(X[queries], y[queries])


@pytest.fixture(scope="module")
def stream():
    rng = np.random.default_rng(0)
    first = _class_batch(rng, 0, [0, 1, 2, 3], [4, 5, 6, 7], noise=0.5)
    second = _class_batch(rng, 100, [4, 5, 6, 7], [0, 1, 2, 3])
    return first, second


def test_ftml_remembers_earlier_classes_where_fine_tuning_forgets(stream):
    (XA, yA), (XB, yB) = stream
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ftml = MetaFeatureExtractor(max_iter=120, random_state=0).partial_fit(XA, yA)
        learnt = _accuracy(ftml.meta_model_, XA, yA)
        naive = clone(ftml).set_params(warm_start=True)
        naive.meta_model_ = ftml.meta_model_  # naive: fine-tune on B alone
        naive.fit(XB, yB)
        ftml.partial_fit(XB, yB)
    kept, forgotten = (
        _accuracy(ftml.meta_model_, XA, yA),
        _accuracy(naive.meta_model_, XA, yA),
    )
    assert learnt > 0.9
    assert kept > 0.8  # no collapse on the first classes
    assert kept > forgotten + 0.2  # measured 0.91-0.98 against 0.37-0.54 (seeds 0-2)
    assert _accuracy(ftml.meta_model_, XB, yB) > 0.9  # and the new ones learnt
    assert ftml.n_iter_ == 240 and len(ftml._replay) == 20 * 24


def test_extractor_continues_pretrained_without_modifying_it(blob_model, blobs):
    X, y = _novel(blobs)
    before = {k: v.clone() for k, v in blob_model.state.items()}
    ext = MetaFeatureExtractor(
        pretrained=blob_model, max_iter=5, replay_per_class=6, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext.partial_fit(X[y < 20], y[y < 20])
        ext.partial_fit(X[y >= 20], y[y >= 20])
    for key, value in blob_model.state.items():
        assert (value == before[key]).all()
    assert ext.meta_model_ is not blob_model
    assert ext.n_iter_ == 60 + 10
    assert len(ext.history_) == len(blob_model.history) + 10
    assert len(ext._replay) == 6 * 8  # a bounded buffer
    assert ext.transform(X[:3]).shape == (3, blob_model.embedding_dim)


def test_extractor_partial_fit_after_fit_warns_that_fit_kept_no_rows(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext = MetaFeatureExtractor(max_iter=5, random_state=0).fit(X[y < 16], y[y < 16])
    assert ext._replay is None  # a fitted extractor holds none of its rows
    with pytest.warns(UserWarning, match="start with partial_fit"):
        ext.partial_fit(*_novel(blobs))
    assert ext._replay.rows()[1].tolist() == np.sort(y[y >= 16]).tolist()
    assert ext.n_iter_ == 10


def test_first_extractor_call_fills_the_buffer(blobs):
    X, y = blobs
    ext = MetaFeatureExtractor(max_iter=5, replay_per_class=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "kept no rows" warning
        ext.partial_fit(X[y < 16], y[y < 16])
        assert len(ext._replay) == 4 * 16
        ext.partial_fit(*_novel(blobs))
    assert len(ext._replay) == 4 * 24
    assert ext.meta_model_.config["training"]["n_classes"] == 24


@pytest.mark.parametrize(
    "params, per_class",
    [({}, 20), ({"n_query": 20}, 21), ({"k_shot": 5, "n_query": 20}, 25)],
)
def test_default_replay_buffer_fits_a_default_episode(params, per_class):
    """None: 20 rows per class, or k_shot + n_query (the unset one at its
    default: 1 shot, 15 queries) when they need more."""
    from skmeta._replay import replay_buffer

    assert replay_buffer(MetaFeatureExtractor(**params)).per_class == per_class


def test_extractor_replay_buffer_follows_replay_per_class(blobs):
    X, y = blobs
    first, second = y < 8, (y >= 8) & (y < 16)
    ext = MetaFeatureExtractor(max_iter=2, replay_per_class=10, random_state=0)
    ext.partial_fit(X[first], y[first])
    assert len(ext._replay) == 10 * 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a lower cap: no warning
        ext.set_params(replay_per_class=3).partial_fit(X[second], y[second])
    assert ext._replay.per_class == 3 and len(ext._replay) == 3 * 16
    # None: the default rule, 20 rows per class (k_shot + n_query when more)
    with pytest.warns(UserWarning, match="None now keeps 20 rows of each class"):
        ext.set_params(replay_per_class=None).partial_fit(*_novel(blobs))
    assert ext._replay.per_class == 20 and len(ext._replay) == 3 * 16 + 15 * 8


def test_extractor_refuses_episodes_larger_than_the_replay_buffer(blobs):
    X, y = blobs
    ext = MetaFeatureExtractor(max_iter=2, replay_per_class=4, random_state=0)
    ext.partial_fit(X[y < 16], y[y < 16])
    model, buffer = ext.meta_model_, ext._replay
    ext.set_params(n_way=3, k_shot=5, n_query=10)
    message = r"replay_per_class=4 .* k_shot=5 \+ n_query=10 needs 15"
    with pytest.raises(ValueError, match=message):
        ext.partial_fit(*_novel(blobs))  # classes of 15 rows, but 4 kept
    assert ext.meta_model_ is model and ext._replay is buffer
    with pytest.raises(ValueError, match="replay_per_class=1 .* needs 2"):
        MetaFeatureExtractor(max_iter=2, replay_per_class=1).partial_fit(X, y)


def test_extractor_partial_fit_refusals(blobs):
    X, y = blobs
    pretrain = meta_train(
        X, y, TrainSettings(5, 2, 5, (10,), method="pretrain", max_iter=3, seed=0)
    )
    with pytest.raises(ValueError, match="episodic method"):
        MetaFeatureExtractor(pretrained=pretrain).partial_fit(X, y)
    first = MetaFeatureExtractor(method="pretrain", max_iter=3)
    with pytest.raises(ValueError, match="episodic method"):  # before training
        first.partial_fit(X, y)  # it meta-trained, then refused the 2nd call
    assert not hasattr(first, "meta_model_")
    with pytest.raises(ValueError, match="checkpoint"):
        MetaFeatureExtractor(checkpoint="run.ckpt").partial_fit(X, y)
    with pytest.raises(ValueError, match="labels y"):
        MetaFeatureExtractor(pretrained=pretrain).partial_fit(X, None)
    with pytest.raises(ValueError, match="differs"):
        MetaFeatureExtractor(
            pretrained=copy.copy(pretrain), method="pretrain", distance="cosine"
        ).partial_fit(X, y)
    with pytest.raises(InvalidParameterError, match="replay_per_class"):
        FewShotRegressor(replay_per_class=3).fit(X, y.astype(float))


def test_extractor_partial_fit_takes_the_models_learning_rate(
    blob_model, maml_model, blobs, monkeypatch
):
    # learning_rate=None: the default of the method of the model continued
    import skmeta._online

    class Stop(Exception):
        pass

    def stop(rows, codes, settings, **kwargs):
        raise Stop(settings.learning_rate)

    monkeypatch.setattr(skmeta._online, "meta_train", stop)
    X, y = _novel(blobs)
    rates = []
    for model, given in [(blob_model, None), (maml_model, None), (blob_model, 0.02)]:
        ext = MetaFeatureExtractor(pretrained=model, learning_rate=given)
        with pytest.raises(Stop) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ext.partial_fit(X, y)
        rates.append(info.value.args[0])
    assert rates == [4e-3, 1e-3, 0.02]
