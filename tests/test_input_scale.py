"""The warning for rows far from the scale of the rows the model
meta-trained on (``skmeta/_input_scale.py``): it fires on rows scaled by
1e3 or 1e-3 or shifted by 1e6, at fit, partial_fit, predict and transform;
never on the model's own kind of rows, new classes included; and models
without statistics of their meta-training rows are not judged."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.meta import MetaModel, accel
from skmeta.meta.train import TrainSettings, meta_train

FAR = "the rows the model meta-trained on"
SCALINGS = {
    "x1e3": (lambda X: X * 1e3, "spread about"),
    "x1e-3": (lambda X: X * 1e-3, "spread about 1/"),
    "+1e6": (lambda X: X + 1e6, "standard deviations"),
}


def _quiet_about_scale():
    """A context in which the scale warning is an error (others ignored)."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("ignore")
    warnings.filterwarnings("error", message=f".*{FAR}")
    return context


def _novel(blobs):
    X, y = blobs
    return X[y >= 16], y[y >= 16]


@pytest.mark.parametrize("name", SCALINGS)
def test_fit_warns_on_a_scaled_support_set(blobs, blob_model, name):
    scale, words = SCALINGS[name]
    X, y = _novel(blobs)
    with pytest.warns(UserWarning, match=FAR) as record:
        FewShotClassifier(pretrained=blob_model).fit(scale(X), y)
    (message,) = [str(w.message) for w in record if FAR in str(w.message)]
    assert words in message and "column" in message
    assert "StandardScaler" in message


def test_the_model_s_own_rows_and_new_classes_do_not_warn(blobs, blob_model):
    X, y = blobs
    novel, labels = _novel(blobs)
    context = _quiet_about_scale()
    try:
        clf = FewShotClassifier(pretrained=blob_model).fit(novel, labels)
        clf.predict(novel[:1])  # one row: no spread, judged on its shift
        clf.predict(X)  # meta-training classes
        for seed in range(20):  # 5-way 1-shot supports of new classes
            rng = np.random.default_rng(seed)
            ways = rng.choice(np.unique(labels), 5, replace=False)
            rows = [rng.choice(np.flatnonzero(labels == c)) for c in ways]
            FewShotClassifier(pretrained=blob_model).fit(novel[rows], labels[rows])
    finally:
        context.__exit__(None, None, None)


def test_digits_new_classes_do_not_warn_and_scaled_ones_do():
    """Real table rows: a model of digits 0-4 given 5-shot supports of 5-9."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    settings = TrainSettings(
        n_way=5, k_shot=1, n_query=1, input_shape=(64,), max_iter=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its constant columns
        model = meta_train(X[y < 5], y[y < 5], settings)
    rng = np.random.default_rng(0)
    context = _quiet_about_scale()
    try:
        for _ in range(10):
            rows = np.concatenate(
                [
                    rng.choice(np.flatnonzero(y == c), 5, replace=False)
                    for c in range(5, 10)
                ]
            )
            MetaFeatureExtractor(pretrained=model).fit(X[rows])
    finally:
        context.__exit__(None, None, None)
    for scale, _ in SCALINGS.values():
        with pytest.warns(UserWarning, match=FAR):
            MetaFeatureExtractor(pretrained=model).fit(scale(X[rows]))


def test_predict_and_transform_warn_on_scaled_queries(blobs, blob_model):
    X, y = _novel(blobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
        ext = MetaFeatureExtractor(pretrained=blob_model).fit(X)
    with pytest.warns(UserWarning, match=FAR):
        scaled = clf.predict_proba(X * 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(scaled, clf.predict_proba(X * 1e-3))  # results as before
    with pytest.warns(UserWarning, match=FAR):
        ext.transform(X * 1e3)


def test_queries_are_judged_until_a_call_of_several_rows(blobs, blob_model):
    """A serving loop's later calls skip the check: a call of several rows
    finds a preprocessing mistake, made alike on every call. A call of one
    row (a health check) has no spread to judge: it does not end the check.
    predict leaves the estimator's __dict__ as it is (scikit-learn's check)."""
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
    state = dict(vars(clf))
    clf.predict(X[:1])  # one row: judged, the check goes on
    with pytest.warns(UserWarning, match=FAR):
        clf.predict(X * 1e-3)  # far less spread: found
    assert vars(clf).keys() == state.keys()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(X * 1e3)  # judged once on several rows: not again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy = pickle.loads(pickle.dumps(blob_model))
        other = FewShotClassifier(pretrained=copy).fit(X, y)
    with pytest.warns(UserWarning, match=FAR):  # another model: judged again
        other.predict(X * 1e3)
    previous = accel.set_enabled(False)
    try:  # the speed switch off: every call judged
        with pytest.warns(UserWarning, match=FAR):
            clf.predict(X * 1e3)
    finally:
        accel.set_enabled(previous)


def test_features_are_named(blobs, blob_model):
    X, y = _novel(blobs)
    frame = pd.DataFrame(X * 1e3, columns=[f"f{i}" for i in range(10)])
    settings = TrainSettings(
        n_way=5, k_shot=2, n_query=5, input_shape=(10,), max_iter=1
    )
    named = meta_train(
        frame.to_numpy(),
        y,
        settings,
        description={"feature_names": list(frame.columns)},
    )
    with pytest.warns(UserWarning, match=FAR) as record:
        FewShotClassifier(pretrained=named).fit(frame * 1e3, y)
    assert any("'f" in str(w.message) for w in record if FAR in str(w.message))


def test_partial_fit_warns(blobs, blob_model):
    X, y = _novel(blobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = FewShotClassifier(pretrained=blob_model).partial_fit(X[y < 20], y[y < 20])
    with pytest.warns(UserWarning, match=FAR):
        clf.partial_fit(X[y >= 20] + 1e6, y[y >= 20])
    ext = MetaFeatureExtractor(
        pretrained=blob_model, max_iter=1, n_way=3, k_shot=1, n_query=1
    )
    with pytest.warns(UserWarning, match=FAR):
        ext.partial_fit(X * 1e3, y)


def test_images_judged_on_all_pixels(images, image_model):
    X, y = images
    context = _quiet_about_scale()
    try:
        FewShotClassifier(pretrained=image_model).fit(X[y >= 6], y[y >= 6])
    finally:
        context.__exit__(None, None, None)
    with pytest.warns(UserWarning, match="pixel values have a spread about"):
        FewShotClassifier(pretrained=image_model).fit(X[y >= 6] * 1e3, y[y >= 6])


def test_another_pixel_range_is_left_to_its_own_warning(images):
    X, y = images
    pixels = (np.clip(X, 0, 1) * 255).astype(np.uint8)
    settings = TrainSettings(
        n_way=3,
        k_shot=1,
        n_query=1,
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        max_iter=1,
    )
    model = meta_train(pixels, y, settings)
    with pytest.warns(UserWarning) as record:
        FewShotClassifier(pretrained=model).fit(pixels / np.float32(255), y)
    messages = [str(w.message) for w in record]
    assert any("0-255 pixels" in m for m in messages)
    assert not any(FAR in m for m in messages)


@pytest.mark.parametrize("pixel_range", [None, 255.0])
def test_models_without_statistics_of_their_rows_are_not_judged(tmp_path, pixel_range):
    """A wrapped module (rows as they are, or scaled by a pixel range), saved
    and loaded: no statistics of meta-training rows, nothing judged."""
    shape = (4,) if pixel_range is None else (1, 2, 2)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    extra = {} if pixel_range is None else {"pixel_range": pixel_range}
    MetaModel.from_module(module, input_shape=shape, **extra).save(tmp_path / "m")
    model = MetaModel.load(tmp_path / "m", backbone=module)
    X = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    context = _quiet_about_scale()
    try:
        FewShotClassifier(pretrained=model).fit(X * 1e6, [0, 0, 1, 1, 2, 2])
    finally:
        context.__exit__(None, None, None)
