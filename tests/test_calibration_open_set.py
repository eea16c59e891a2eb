"""FewShotClassifier's calibrated probabilities (``calibrate``) and open-set
prediction (``unknown_label``, ``rejection_rate``)."""

import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor
from skmeta.meta.model import MetaModel


def _blobs(n_classes=40, per_class=25, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, dim)) * 2.5
    y = np.repeat(np.arange(n_classes), per_class)
    X = centers[y] + rng.normal(size=(y.size, dim))
    return X.astype(np.float32), y


X, y = _blobs()
BASE = y < 28  # meta-training classes; 28..33 known novel, 34..39 unknown


@pytest.fixture(scope="module")
def calibrated():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return (
            MetaFeatureExtractor(
                calibrate=True,
                n_way=5,
                k_shot=1,
                n_query=10,
                max_iter=150,
                validation_fraction=0.2,
                random_state=0,
            )
            .fit(X[BASE], y[BASE])
            .meta_model_
        )


def _support(classes, shots=1):
    return np.concatenate([np.flatnonzero(y == c)[:shots] for c in classes])


def test_predict_proba_divides_scores_by_the_calibrated_temperature(calibrated):
    record = calibrated.config["calibration"]
    assert record["temperature"] > 0 and record["ece_after"] <= record["ece_before"]
    support = _support(range(28, 33))
    clf = FewShotClassifier(pretrained=calibrated).fit(X[support], y[support])
    assert clf.temperature_ == record["temperature"]
    queries = X[np.isin(y, range(28, 33))]
    expected = softmax(
        clf.decision_function(queries) / np.float32(record["temperature"]), axis=1
    )
    np.testing.assert_allclose(clf.predict_proba(queries), expected, rtol=1e-5)
    assert np.array_equal(clf.predict(queries), clf.classes_[expected.argmax(1)])


def test_calibrate_auto_holds_no_class_out_without_early_stopping():
    kwargs = dict(n_way=5, k_shot=1, n_query=5, max_iter=20, random_state=0)
    auto = FewShotClassifier(**kwargs).fit(X[BASE], y[BASE])
    off = FewShotClassifier(calibrate=False, **kwargs).fit(X[BASE], y[BASE])
    assert "calibration" not in auto.meta_model_.config
    assert auto.temperature_ == 1.0
    np.testing.assert_array_equal(auto.decision_function(X), off.decision_function(X))
    early = FewShotClassifier(early_stopping=True, validation_fraction=0.2, **kwargs)
    assert "calibration" in early.fit(X[BASE], y[BASE]).meta_model_.config


def test_unknown_label_rejects_queries_of_classes_not_in_the_support(calibrated):
    support = _support(range(28, 34), shots=5)
    clf = FewShotClassifier(pretrained=calibrated, unknown_label=-1, rejection_rate=0.1)
    clf.fit(X[support], y[support])
    known = np.isin(y, range(28, 34)) & ~np.isin(np.arange(y.size), support)
    unknown = y >= 34
    rejected_known = np.mean(clf.predict(X[known]) == -1)
    rejected_unknown = np.mean(clf.predict(X[unknown]) == -1)
    assert rejected_unknown > 0.5 and rejected_known < 0.3
    assert rejected_unknown > 3 * rejected_known
    accepted = clf.predict(X[known])
    accepted_right = accepted[accepted != -1] == y[known][accepted != -1]
    assert accepted_right.mean() > 0.8
    # a stricter rate rejects more of both
    strict = FewShotClassifier(
        pretrained=calibrated, unknown_label=-1, rejection_rate=0.4
    )
    strict.fit(X[support], y[support])
    assert strict.unknown_threshold_ > clf.unknown_threshold_
    assert np.mean(strict.predict(X[known]) == -1) >= rejected_known


def test_rejection_is_predicts_own_and_the_documented_threshold_finds_it(
    calibrated,
):
    """Wrappers that predict from predict_proba or decision_function lose the
    rejection (documented, no warning); the rows predict rejects are those
    probabilities.rst says to compare with unknown_threshold_."""
    from sklearn.base import clone
    from sklearn.ensemble import BaggingClassifier
    from sklearn.multiclass import OneVsRestClassifier

    support = _support(range(28, 34), shots=5)
    queries = X[y >= 28]
    clf = FewShotClassifier(pretrained=calibrated, unknown_label=-1, rejection_rate=0.1)
    rejected = clf.fit(X[support], y[support]).predict(queries) == -1
    assert 0 < rejected.sum() < len(queries)
    best = clf.decision_function(queries).max(axis=1)
    np.testing.assert_array_equal(best < clf.unknown_threshold_, rejected)
    for wrapper in (
        OneVsRestClassifier(clone(clf)),
        BaggingClassifier(clone(clf), n_estimators=2, random_state=0),
    ):
        assert -1 not in wrapper.fit(X[support], y[support]).predict(queries)


def test_unknown_label_of_another_type_than_the_classes(calibrated):
    support = _support(range(28, 33))
    clf = FewShotClassifier(
        pretrained=calibrated, unknown_label="unknown", rejection_rate=0.5
    )
    labels = clf.fit(X[support], y[support]).predict(X[y >= 28])
    assert labels.dtype == object
    assert "unknown" in set(labels) and set(labels) - {"unknown"} <= set(range(28, 33))
    # numbers stay numbers (not strings) beside the unknown label
    assert all(isinstance(v, (int, np.integer)) for v in labels if v != "unknown")


def test_open_set_errors(calibrated):
    support = _support(range(28, 33))
    plain = (
        MetaFeatureExtractor(n_way=5, k_shot=1, n_query=5, max_iter=5, random_state=0)
        .fit(X[BASE], y[BASE])
        .meta_model_
    )
    with pytest.raises(ValueError, match="calibrate=True"):
        FewShotClassifier(pretrained=plain, unknown_label=-1).fit(
            X[support], y[support]
        )
    with pytest.raises(ValueError, match="is one of the classes"):
        FewShotClassifier(pretrained=calibrated, unknown_label=28).fit(
            X[support], y[support]
        )
    with pytest.raises(ValueError, match="applies only with unknown_label"):
        FewShotClassifier(pretrained=calibrated, rejection_rate=0.1).fit(
            X[support], y[support]
        )
    with pytest.raises(ValueError, match="rejection_rate"):
        FewShotClassifier(
            pretrained=calibrated, unknown_label=-1, rejection_rate=0.9
        ).fit(X[support], y[support])
    with pytest.raises(ValueError, match="unknown_label"):
        MetaFeatureExtractor(pretrained=calibrated, unknown_label=-1).fit(X[:5])
    with pytest.raises(ValueError, match="calibrate"):
        FewShotRegressor(calibrate=True).fit(X, X[:, 0])


def test_calibration_survives_save_and_load(calibrated, tmp_path):
    calibrated.save(tmp_path / "m.safetensors")
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    assert loaded.config["calibration"] == calibrated.config["calibration"]
    support = _support(range(28, 33))
    a = FewShotClassifier(pretrained=calibrated, unknown_label=-1).fit(
        X[support], y[support]
    )
    b = FewShotClassifier(pretrained=loaded, unknown_label=-1).fit(
        X[support], y[support]
    )
    assert a.unknown_threshold_ == b.unknown_threshold_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_transductive_scores_take_no_temperature_and_no_open_set(calibrated):
    support = _support(range(28, 33))
    queries = np.flatnonzero(np.isin(y, range(28, 33)))[-20:]
    rows = np.concatenate([support, queries])
    labels = np.concatenate([y[support], np.full(queries.size, -1)])
    clf = FewShotClassifier(pretrained=calibrated, transductive="bdcspn")
    clf.fit(X[rows], labels)
    assert clf.temperature_ == 1.0
    expected = softmax(clf.decision_function(X[queries]), axis=1)
    np.testing.assert_allclose(clf.predict_proba(X[queries]), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown_label does not apply"):
        FewShotClassifier(
            pretrained=calibrated, transductive="bdcspn", unknown_label=-2
        ).fit(X[rows], labels)
    transductive = FewShotClassifier(pretrained=calibrated, transductive="bdcspn")
    assert not hasattr(transductive, "partial_fit")  # scikit-learn's checks skip it
    with pytest.raises(AttributeError) as info:
        transductive.partial_fit(X[rows], labels)
    assert "partial_fit does not apply" in str(info.value.__cause__)
    clf.set_params(transductive=None)  # a transductive fit kept no sums
    with pytest.raises(ValueError, match="fit was transductive"):
        clf.partial_fit(X[support], y[support])


def test_an_integer_unknown_label_stays_an_integer_beside_string_classes(calibrated):
    support = _support(range(28, 33))
    names = np.array([f"c{c}" for c in range(40)])
    clf = FewShotClassifier(pretrained=calibrated, unknown_label=-1, rejection_rate=0.5)
    with warnings.catch_warnings():  # numpy 1.24 warned comparing str with int
        warnings.simplefilter("error", FutureWarning)
        labels = clf.fit(X[support], names[y[support]]).predict(X[y >= 28])
    assert labels.dtype == object
    assert any(v == -1 and isinstance(v, (int, np.integer)) for v in labels)
    assert "-1" not in set(labels)
    assert set(labels) - {-1} <= {f"c{c}" for c in range(28, 33)}


def test_default_n_way_counts_only_the_classes_left_after_holding_out():
    # 20 classes; calibrate holds out 2, so 18 are left for the default n_way
    base = y < 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext = MetaFeatureExtractor(calibrate=True, max_iter=3, random_state=0)
        ext.fit(X[base], y[base])
    assert ext.meta_model_.config["training"]["n_way"] == 18
    with pytest.raises(ValueError, match="hold out 2 for validation"):
        MetaFeatureExtractor(calibrate=True, n_way=19, max_iter=3).fit(X[base], y[base])


def test_calibrating_on_fewer_held_out_classes_than_n_way_warns():
    base = y < 20
    with pytest.warns(UserWarning, match="on 2-way episodes"):
        MetaFeatureExtractor(calibrate=True, n_way=10, max_iter=3, random_state=0).fit(
            X[base], y[base]
        )


def test_early_stopping_alone_does_not_warn_about_calibration():
    base = y < 20
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        MetaFeatureExtractor(
            early_stopping=True, n_way=10, max_iter=3, random_state=0
        ).fit(X[base], y[base])
    assert not [w for w in got if "calibrate=True fits" in str(w.message)]


def test_a_partial_fit_refused_for_its_unknown_label_changes_nothing(calibrated):
    support = _support(range(28, 33))
    clf = FewShotClassifier(pretrained=calibrated, unknown_label=-1)
    with pytest.raises(ValueError, match="unknown_label=-1 is one of the classes"):
        clf.partial_fit(X[:2], [-1, 28])  # a first call
    assert not hasattr(clf, "classes_") and not hasattr(clf, "adapted_")
    clf.partial_fit(X[support], y[support])
    classes, counts = clf.classes_.copy(), clf.class_count_.copy()
    labels = clf.predict(X[y >= 28])
    with pytest.raises(ValueError, match="unknown_label=-1 is one of the classes"):
        clf.partial_fit(X[:2], [-1, -1])
    np.testing.assert_array_equal(clf.classes_, classes)
    np.testing.assert_array_equal(clf.class_count_, counts)
    np.testing.assert_array_equal(clf.predict(X[y >= 28]), labels)


def test_score_counts_rejections_of_unknown_queries_as_right(calibrated):
    support = _support(range(28, 33))
    clf = FewShotClassifier(
        pretrained=calibrated, unknown_label="unknown", rejection_rate=0.2
    ).fit(X[support], y[support])
    queries = y >= 28
    truth = np.array(
        [v if v < 33 else "unknown" for v in y[queries]], dtype=object
    )  # numbers beside a string, which accuracy_score refuses
    predicted = clf.predict(X[queries])
    expected = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    assert clf.score(X[queries], truth) == pytest.approx(expected)
    assert 0 < expected < 1


@pytest.mark.parametrize(
    "key, value",
    [
        ("temperature", -1.0),
        ("temperature", 0),
        ("known_score_levels", "x"),
        ("known_score_quantiles", [1.0]),
        ("known_score_levels", [0.5, 0.1]),
    ],
)
def test_a_file_with_an_unusable_calibration_is_refused(
    calibrated, tmp_path, key, value
):
    import json

    from safetensors import safe_open
    from safetensors.numpy import save as safetensors_bytes

    from skmeta.meta.io import checksum

    path = tmp_path / "m.safetensors"
    calibrated.save(path)
    with safe_open(path, "pt") as handle:
        metadata = json.loads(handle.metadata()["skmeta"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    metadata["config"]["calibration"][key] = value
    del metadata["sha256"]
    metadata["sha256"] = checksum(metadata, tensors)  # signed, as anyone can
    path.write_bytes(
        safetensors_bytes(
            {k: v.numpy() for k, v in tensors.items()},
            metadata={"skmeta": json.dumps(metadata)},
        )
    )
    with pytest.raises(ValueError, match="calibration"):
        MetaModel.load(path)


def test_changed_adaptation_settings_drop_the_calibration(calibrated):
    """The temperature and the open-set threshold were fitted to scores adapted
    with the model's own settings: with feature_norm='l2' the threshold lay
    below every possible score (open set off) and the probabilities were far
    too flat, in silence (reviewer). Settings equal to the model's keep them."""
    support = _support(range(28, 33))
    recorded = calibrated.config["method_params"]["feature_norm"]
    same = FewShotClassifier(
        pretrained=calibrated, method_params={"feature_norm": recorded}
    ).fit(X[support], y[support])
    assert same.temperature_ == calibrated.config["calibration"]["temperature"]
    changed = FewShotClassifier(
        pretrained=calibrated, method_params={"feature_norm": "l2"}
    )
    with pytest.warns(UserWarning, match="feature_norm='l2' differ .* temperature 1"):
        changed.fit(X[support], y[support])
    assert changed.temperature_ == 1.0
    changed.set_params(unknown_label=-1)
    with pytest.raises(ValueError, match="unknown_label does not apply"):
        changed.fit(X[support], y[support])


def test_test_time_views_drop_the_calibration(calibrated):
    """The temperature was fitted on scores without test-time views; with
    them temperature 1 was the better calibrated on Omniglot (ECE 0.45-1.75%
    against 2.19-4.36%), so views take it and refuse the open-set threshold."""
    image_model = MetaFeatureExtractor(
        input_shape=(1, 4, 3), backbone="mlp", calibrate=True, n_way=5, k_shot=1,
        max_iter=3,
        validation_fraction=0.2, random_state=0,
    ).fit(X[BASE], y[BASE]).meta_model_  # fmt: skip
    support = _support(range(28, 33))
    shifted = FewShotClassifier(pretrained=image_model, test_time_shifts=(1,))
    with pytest.warns(UserWarning, match="test_time_shifts=\\[1\\] differ"):
        shifted.fit(X[support], y[support])
    assert shifted.temperature_ == 1.0
    shifted.set_params(unknown_label=-1)
    with pytest.raises(ValueError, match="unknown_label does not apply"):
        shifted.fit(X[support], y[support])
    arrays = FewShotClassifier(
        pretrained=image_model, test_time_shifts=np.array([1, 2])
    )
    with pytest.warns(UserWarning, match="test_time_shifts=\\[1, 2\\] differ"):
        arrays.fit(X[support], y[support])  # an array's truth value raised
    plain = MetaFeatureExtractor(
        input_shape=(1, 4, 3), backbone="mlp", n_way=5, k_shot=1, max_iter=3,
    ).fit(X[BASE], y[BASE]).meta_model_  # fmt: skip
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        FewShotClassifier(pretrained=plain, test_time_shifts=np.array([1, 2])).fit(
            X[support], y[support]
        )
    assert not [w for w in record if "calibrated" in str(w.message)]


def test_output_settings_changed_after_fit_are_refused_clearly(calibrated):
    """unknown_label set after fit failed in predict with an AttributeError
    (no unknown_threshold_); transductive set after fit was silently ignored
    (a reviewer)."""
    novel = (y >= 28) & (y < 34)
    clf = FewShotClassifier(pretrained=calibrated).fit(X[novel], y[novel])
    clf.set_params(unknown_label=-1)
    for score in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(ValueError, match="unknown_label changed since fit"):
            score(X[novel][:3])
    with pytest.raises(ValueError, match=r"unknown_label=None; call fit again"):
        clf.score(X[novel], y[novel])
    clf.set_params(unknown_label=None, transductive="bdcspn")
    with pytest.raises(ValueError, match="transductive changed since fit"):
        clf.predict(X[novel][:3])
    clf.set_params(transductive=None)
    assert clf.predict(X[novel][:3]).shape == (3,)  # as fitted again: fine
    clf.set_params(unknown_label=-1).fit(X[novel], y[novel])
    assert clf.predict(X[novel][:3]).shape == (3,)
    clf.set_params(rejection_rate=0.2)
    with pytest.raises(ValueError, match="rejection_rate changed since fit"):
        clf.predict(X[novel][:3])


def test_a_nan_unknown_label_survives_pickling(calibrated):
    """NaN is not equal to itself and pickling keeps no float identity: the
    changed-since-fit check refused every pickled NaN classifier (a review)."""
    import pickle

    novel = (y >= 28) & (y < 34)
    clf = FewShotClassifier(pretrained=calibrated, unknown_label=np.nan)
    clf.fit(X[novel], y[novel].astype(float))
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X[:5]), clf.predict(X[:5]))


def test_a_record_written_before_the_checked_temperature_is_used_as_it_was(
    calibrated, tmp_path
):
    """Records without fitted_temperature (the temperature fitted and
    measured on the same episodes) keep their temperature, and their
    summary and card say what they said."""
    import json

    from safetensors import safe_open
    from safetensors.numpy import save as safetensors_bytes

    from skmeta.meta.io import checksum
    from skmeta.meta.model_card import model_card
    from skmeta.meta.provenance import calibration_check

    path = tmp_path / "m.safetensors"
    calibrated.save(path)
    with safe_open(path, "pt") as handle:
        metadata = json.loads(handle.metadata()["skmeta"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    record = metadata["config"]["calibration"]
    for key in (
        "fitted_temperature",
        "temperature_kept_at_1",
        "ece_fitted",
        "n_fit_queries",
        "n_check_queries",
    ):
        del record[key]
    record["temperature"] = 1.3
    del metadata["sha256"]
    metadata["sha256"] = checksum(metadata, tensors)
    path.write_bytes(
        safetensors_bytes(
            {k: v.numpy() for k, v in tensors.items()},
            metadata={"skmeta": json.dumps(metadata)},
        )
    )
    old = MetaModel.load(path)
    support = _support(range(28, 33))
    assert (
        FewShotClassifier(pretrained=old).fit(X[support], y[support]).temperature_
        == 1.3
    )
    assert calibration_check(old.config["calibration"]) == ""
    card = model_card(old, "m")
    assert f"fitted on {record['n_queries']} queries" in card, card
    assert "error" in old.summary() and "not fitted on" not in old.summary()


def test_the_summary_and_card_say_how_the_temperature_was_checked(calibrated):
    from skmeta.meta.model_card import model_card
    from skmeta.meta.provenance import calibration_check

    record = dict(calibrated.config["calibration"])
    note = calibration_check(record)
    assert f"on the {record['n_check_queries']} queries of the half" in note
    assert note in calibrated.summary() and note in model_card(calibrated, "m")
    record.update(
        temperature=1.0,
        fitted_temperature=1.25,
        ece_fitted=0.05,
        temperature_kept_at_1="it raised the error",
    )
    assert calibration_check(record).endswith(
        "; the fitted temperature 1.25 (5.00% there) is not applied"
    )
