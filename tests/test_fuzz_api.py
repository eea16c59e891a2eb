"""Bad input, fuzzed: whatever goes into the public API, the answer is a result
or a clear ``ValueError``/``TypeError`` naming the parameter or input, never
an error from inside torch, a hang or a crash.

Most examples adapt one shared tiny pretrained model (milliseconds); those
that meta-train use a tiny MLP and one or two iterations.
"""

import os
import traceback
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skmeta import (
    EpisodicSplit,
    FewShotClassifier,
    FewShotRegressor,
    MetaFeatureExtractor,
    episodic_score,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# SKMETA_FUZZ_EXAMPLES=500 searches harder (minutes instead of seconds)
EXAMPLES = int(os.environ.get("SKMETA_FUZZ_EXAMPLES", 40))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
TINY = {"backbone_params": {"hidden_sizes": (8,)}, "random_state": 0}


def _torch_frames(exc: BaseException) -> list[str]:
    """Source files of `exc`'s innermost frames that lie inside torch."""
    frames = traceback.extract_tb(exc.__traceback__)
    torch_dir = os.path.dirname(torch.__file__)
    return [f.filename for f in frames[-1:] if f.filename.startswith(torch_dir)]


def clear_error_or_result(call, *names):
    """Run `call`: its result, or the ``ValueError``/``TypeError`` it raised,
    which must come from skmeta or scikit-learn (not from inside torch) and,
    when `names` are given, name one of them. Any other exception fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except (ValueError, TypeError) as exc:
        assert not _torch_frames(exc), f"torch's error surfaced: {exc!r}"
        if names:
            assert any(name in str(exc) for name in names), (names, str(exc))
        return exc


@pytest.fixture(scope="session")
def tiny(blobs):
    """Tiny pretrained ProtoNet and MAML classifiers' models and a MAML
    regressor's, shared by the session (10 features)."""
    X, y = blobs
    base = y < 16
    proto = FewShotClassifier(max_iter=3, **TINY).fit(X[base], y[base])
    maml = FewShotClassifier(method="maml", inner_steps=2, max_iter=2, **TINY)
    maml.fit(X[base], y[base])
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(8), 10)
    Xr = rng.standard_normal((80, 10)).astype(np.float32)
    yr = Xr[:, 0] * (groups % 3) + 0.1 * rng.standard_normal(80)
    reg = FewShotRegressor(max_iter=2, **TINY).fit(Xr, yr, groups=groups)
    return {
        "protonet": proto.meta_model_,
        "maml": maml.meta_model_,
        "regression": reg.meta_model_,
    }


# -- data of any shape, dtype and value ----------------------------------------
NUMBER_DTYPES = [
    np.int8,
    np.int64,
    np.uint8,
    np.bool_,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
]


@st.composite
def matrices(draw):
    """Arrays of any of the dtypes above (with NaN, infinity and huge values
    among the floats), strings or objects; mostly 2-D, sometimes 1-D or 3-D;
    0 to 12 rows of the fitted width (10) or another."""
    n_rows, n_cols = st.integers(0, 12), st.sampled_from([10, 0, 3])
    shape = draw(
        st.one_of(
            st.tuples(n_rows, n_cols),
            st.tuples(n_rows),
            st.tuples(n_rows, n_cols, st.integers(1, 2)),
        )
    )
    kind = draw(st.sampled_from(["number", "number", "str", "object"]))
    if kind == "number":
        dtype = draw(st.sampled_from(NUMBER_DTYPES))
        return draw(hnp.arrays(dtype, shape))
    if kind == "str":
        return draw(hnp.arrays(np.dtype("U3"), shape))
    elements = st.one_of(st.none(), st.integers(-5, 5), st.floats(), st.text())
    return draw(hnp.arrays(object, shape, elements=elements))


LABELS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
    st.floats(allow_nan=True),
    st.none(),
)


@st.composite
def labels(draw, n):
    """`n` labels of one type or mixed, as a list, an int, float, string or
    object array, or a 2-D column."""
    values = draw(st.lists(LABELS, min_size=n, max_size=n))
    form = draw(st.sampled_from(["list", "array", "column", "ints", "short"]))
    if form == "array":
        return np.array(values, dtype=object)
    if form == "column":
        return np.array(values, dtype=object).reshape(-1, 1)
    if form == "ints":
        return np.arange(n) % draw(st.integers(1, 4))
    if form == "short":
        return values[:-1]
    return values


@FUZZ
@given(data=st.data(), method=st.sampled_from(["protonet", "maml"]))
def test_classifier_fit_and_predict_any_data(tiny, data, method):
    X = data.draw(matrices(), label="X")
    y = data.draw(labels(len(X)), label="y")
    clf = FewShotClassifier(pretrained=tiny[method])
    fitted = clear_error_or_result(lambda: clf.fit(X, y))
    if isinstance(fitted, Exception):
        return
    query = data.draw(matrices(), label="query")
    for method_name in ("predict", "predict_proba", "decision_function"):
        out = clear_error_or_result(lambda m=method_name: getattr(clf, m)(query))
        if not isinstance(out, Exception):
            assert len(out) == len(query)
            if method_name == "predict":
                assert set(out) <= set(clf.classes_)
            else:
                assert np.isfinite(out).all()


@FUZZ
@given(data=st.data())
def test_regressor_fit_and_predict_any_data(tiny, data):
    X = data.draw(matrices(), label="X")
    y = data.draw(
        st.one_of(
            hnp.arrays(
                st.sampled_from([np.float64, np.int64, np.bool_, np.complex64]),
                len(X),
            ),
            labels(len(X)),
        ),
        label="y",
    )
    reg = FewShotRegressor(pretrained=tiny["regression"])
    if isinstance(clear_error_or_result(lambda: reg.fit(X, y)), Exception):
        return
    query = data.draw(matrices(), label="query")
    out = clear_error_or_result(lambda: reg.predict(query))
    if not isinstance(out, Exception):
        assert out.shape == (len(query),) and np.isfinite(out).all()


@FUZZ
@given(X=matrices(), query=matrices())
def test_extractor_fit_and_transform_any_data(tiny, X, query):
    extractor = MetaFeatureExtractor(pretrained=tiny["protonet"])
    if isinstance(clear_error_or_result(lambda: extractor.fit(X)), Exception):
        return
    out = clear_error_or_result(lambda: extractor.transform(query))
    if not isinstance(out, Exception):
        assert out.shape == (len(query), tiny["protonet"].embedding_dim)


# -- parameters of any type and value ----------------------------------------------
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([-(2**63), -1, 0, 1, 2, 3, 10**12, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["auto", "cpu", "cuda", "meta", "mps", "mlp", "conv4", "images"]),
    st.lists(st.integers(-2, 4), max_size=3).map(tuple),
    st.sampled_from([(10**12,), (1, 10**6, 10**6), (2**63, 2**63), (10, 1, 1)]),
    st.dictionaries(st.sampled_from(["hidden_sizes", "x", "distance"]), st.none()),
    st.just(object()),
    st.just(np.float32(0.5)),
    st.just(np.int64(2)),
)
# meta-training parameters whose large values only cost time are drawn small
BOUNDED = {
    "max_iter": st.integers(-1, 2),
    "meta_batch_size": st.integers(-1, 2),
    "inner_steps": st.integers(-1, 2),
    "n_iter_no_change": st.integers(-1, 2),
}
META_TRAINING = [
    "method",
    "backbone",
    "backbone_params",
    "input_shape",
    "distance",
    "inner_lr",
    "first_order",
    "method_params",
    "n_way",
    "k_shot",
    "n_query",
    "learning_rate",
    "max_grad_norm",
    "early_stopping",
    "validation_fraction",
    "n_jobs",
    "precision",
    "augmentation",
    "class_augmentation",
    "device",
    "random_state",
    "verbose",
    *BOUNDED,
]


@settings(FUZZ, max_examples=3 * EXAMPLES // 2)
@given(data=st.data(), name=st.sampled_from(META_TRAINING))
def test_meta_training_parameters_of_any_value(blobs, data, name):
    X, y = blobs
    value = data.draw(BOUNDED.get(name, ANY_VALUE), label=name)
    params = {"max_iter": 1, **TINY, name: value}
    if name == "backbone_params" and isinstance(value, dict):
        params[name] = {**TINY["backbone_params"], **value}
    clf = FewShotClassifier(**params)
    # a bad setting inside a dict is named by its key
    keys = [str(key) for key in value] if isinstance(value, dict) else []
    result = clear_error_or_result(lambda: clf.fit(X[:120], y[:120]), name, *keys)
    if not isinstance(result, Exception):
        assert clf.predict(X[:5]).shape == (5,)


ADAPTATION = ["inner_lr", "inner_steps", "device", "method", "input_shape"]


@FUZZ
@given(
    data=st.data(),
    name=st.sampled_from(ADAPTATION),
    method=st.sampled_from(["protonet", "maml"]),
)
def test_adaptation_parameters_of_any_value(tiny, blobs, data, name, method):
    X, y = blobs
    value = data.draw(BOUNDED.get(name, ANY_VALUE), label=name)
    clf = FewShotClassifier(pretrained=tiny[method], **{name: value})
    rows = y >= 16
    result = clear_error_or_result(lambda: clf.fit(X[rows], y[rows]), name)
    if not isinstance(result, Exception):
        assert clf.predict(X[:5]).shape == (5,)


DEVICES = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["cpu:0", "cpu:-1", "cuda:0", "cuda:99", "cuda:x", "meta", "mps", "xla"]
    ),
    st.sampled_from(["cpu", "meta", "cuda"]).map(torch.device),
)


@FUZZ
@given(device=DEVICES)
def test_device_strings(tiny, blobs, device):
    X, y = blobs
    clf = FewShotClassifier(pretrained=tiny["protonet"], device=device)
    result = clear_error_or_result(lambda: clf.fit(X[:40], y[:40]), "device")
    if not isinstance(result, Exception):
        assert torch.device(device).type == "cpu"


@FUZZ
@given(
    path=st.one_of(
        st.text(max_size=20),
        st.sampled_from(["/", ".", "/dev/null", "~0", "~no-such-user/m.safetensors"]),
    )
)
def test_pretrained_paths_that_are_no_model(blobs, path):
    """A missing file is a ``FileNotFoundError``, anything else that is no
    model a ``ValueError``; both name it."""
    X, y = blobs
    clf = FewShotClassifier(pretrained=path)
    try:
        result = clear_error_or_result(
            lambda: clf.fit(X[:40], y[:40]), "pretrained", path
        )
    except FileNotFoundError as exc:
        assert "pretrained=" in str(exc)
    else:
        assert isinstance(result, ValueError)


# -- episodes ---------------------------------------------------------------------
SIZES = st.one_of(st.integers(-2, 30), ANY_VALUE)


@FUZZ
@given(
    data=st.data(),
    n_way=SIZES,
    k_shot=SIZES,
    n_query=SIZES,
    n_episodes=st.one_of(st.integers(-1, 5), st.sampled_from([0, 2.5, "3", None])),
)
def test_episodic_split_any_sizes_and_labels(data, n_way, k_shot, n_query, n_episodes):
    n = data.draw(st.integers(0, 40), label="n_samples")
    y = data.draw(st.one_of(labels(n), st.just(np.arange(n) % 4)), label="y")
    cv = EpisodicSplit(n_way, k_shot, n_query, n_episodes, random_state=0)
    folds = clear_error_or_result(
        lambda: list(cv.split(np.zeros((n, 1)), y)),
        "n_way",
        "k_shot",
        "n_query",
        "n_episodes",
        "y",
        "label",
        "samples",
        "array",
    )
    if isinstance(folds, Exception):
        return
    y = np.asarray(y)
    assert len(folds) == n_episodes
    for support, query in folds:
        assert len(support) == n_way * k_shot and len(query) == n_way * n_query
        assert not set(support) & set(query)
        assert set(y[support]) == set(y[query]) and len(set(y[support])) == n_way


@FUZZ
@given(
    data=st.data(),
    n_way=st.integers(2, 5),
    k_shot=st.integers(1, 3),
    n_query=st.integers(1, 3),
    with_sources=st.booleans(),
)
def test_grouped_episodic_split_any_groups(data, n_way, k_shot, n_query, with_sources):
    """Random labels, groups and sources: valid episodes (classes in one group,
    support and queries from two sources) or a clear error; never a hang."""
    n = data.draw(st.integers(0, 60), label="n_samples")
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 7)), label="y")
    # a group per class mostly; sometimes per row, so classes may straddle two
    per_class = data.draw(st.booleans(), label="one group per class")
    shape = 8 if per_class else n
    drawn = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 2)))
    group = drawn[y] if per_class else drawn
    source = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 3)))
    groups = np.c_[group, source] if with_sources else group
    cv = EpisodicSplit(n_way, k_shot, n_query, n_episodes=5, random_state=0)
    folds = clear_error_or_result(
        lambda: list(cv.split(np.zeros((n, 1)), y, groups)),
        "group",
        "n_way",
        "source",
        "samples",
    )
    if isinstance(folds, Exception):
        return
    assert len(folds) == 5
    for support, query in folds:
        assert len(support) == n_way * k_shot and len(query) == n_way * n_query
        assert not set(support) & set(query)
        assert set(y[support]) == set(y[query]) and len(set(y[support])) == n_way
        assert len(set(group[support]) | set(group[query])) == 1
        if with_sources:
            (first,), (second,) = set(source[support]), set(source[query])
            assert first != second


@settings(FUZZ, max_examples=EXAMPLES // 2)
@given(
    n_way=st.integers(1, 12),
    k_shot=st.integers(0, 20),
    n_query=st.integers(0, 20),
    scoring=st.sampled_from([None, "accuracy", "nope", 3]),
)
def test_episodic_score_sizes_beyond_the_counts(
    tiny, blobs, n_way, k_shot, n_query, scoring
):
    X, y = blobs
    rows = y >= 16  # 8 classes of 15
    score = clear_error_or_result(
        lambda: episodic_score(
            FewShotClassifier(pretrained=tiny["protonet"]),
            X[rows],
            y[rows],
            n_way=n_way,
            k_shot=k_shot,
            n_query=n_query,
            n_episodes=2,
            random_state=0,
            scoring=scoring,
        ),
        "n_way",
        "k_shot",
        "n_query",
        "scoring",
        "samples",
    )
    if not isinstance(score, Exception):
        assert score.scores.shape == (2,) and 0 <= score.mean <= 1


# -- regressions found by the fuzzing ---------------------------------------------
def test_bool_episode_sizes_are_refused_by_name(blobs):
    X, y = blobs
    with pytest.raises(TypeError, match="'k_shot' parameter .* not a bool"):
        FewShotClassifier(k_shot=True, max_iter=1, **TINY).fit(X, y)


def test_input_shape_of_bools_is_refused(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="input_shape must be a tuple of positive"):
        FewShotClassifier(input_shape=(True, 10), max_iter=1, **TINY).fit(X, y)


@pytest.mark.parametrize("device", ["meta", "mps", "xla", torch.device("meta")])
def test_devices_that_cannot_hold_data_are_refused(tiny, blobs, device):
    X, y = blobs
    clf = FewShotClassifier(pretrained=tiny["protonet"], device=device)
    with pytest.raises(ValueError, match="device=.* cannot hold data"):
        clf.fit(X[:40], y[:40])


def test_classifier_with_pretrained_needs_y(tiny, blobs):
    with pytest.raises(ValueError, match="requires y to be passed"):
        FewShotClassifier(pretrained=tiny["protonet"]).fit(blobs[0], None)


def test_values_beyond_float32_are_refused(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="X holds values beyond float32"):
        FewShotClassifier(max_iter=1, **TINY).fit(X.astype(np.float64) * 1e38, y)
    with pytest.raises(ValueError, match="y holds values beyond float32"):
        FewShotRegressor(max_iter=1, **TINY).fit(X, y * 1e300)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"backbone_params": {"hidden_sizes": (-1,)}}, "negative dimension"),
        ({"backbone_params": {"hidden_sizes": (10**12,)}}, "allocate"),
        ({"backbone_params": {"hidden_sizes": ("8",)}}, "must be tuple of ints"),
        (
            {"backbone": "conv4", "input_shape": (10, 1, 1), "backbone_params": {}},
            "too small",
        ),
        (
            {"backbone": "conv4", "input_shape": (1, 2, 5), "backbone_params": {}},
            "too small",
        ),
    ],
)
def test_backbones_that_cannot_run_name_their_settings(blobs, params, match):
    X, y = blobs
    with pytest.raises((ValueError, TypeError), match=f"backbone=.*{match}"):
        FewShotClassifier(max_iter=1, **{**TINY, **params}).fit(X, y)


def test_mixed_label_types_in_splits_and_groups_name_the_input(blobs):
    X, y = blobs
    mixed = np.array([1, "a"] * 30, dtype=object)
    with pytest.raises(TypeError, match="y mixes labels of types"):
        next(EpisodicSplit(n_way=2, k_shot=1, n_query=1).split(X[:60], mixed))
    with pytest.raises(TypeError, match="groups mixes values"):
        FewShotRegressor(max_iter=1, **TINY).fit(X[:60], y[:60], groups=mixed)
    with pytest.raises(TypeError, match="X must be array-like"):
        next(EpisodicSplit().split(None, y))


def test_inner_lr_beyond_float32_is_refused_by_name(tiny, blobs):
    """It used to reach torch, which failed converting it to float32."""
    X, y = blobs
    clf = FewShotClassifier(pretrained=tiny["maml"], inner_lr=3.5e38)
    message = "inner_lr must be a finite float, 0 < inner_lr <= 3.40"
    with pytest.raises(ValueError, match=message):
        clf.fit(X[y >= 16], y[y >= 16])


def test_numpy_scalar_parameters_are_recorded_as_numbers(blobs):
    """NumPy scalars are valid settings: meta-training used to run to its end
    and then fail to record them in the model's JSON config."""
    X, y = blobs
    clf = FewShotClassifier(
        n_way=np.int64(3), learning_rate=np.float32(1e-3), max_iter=1, **TINY
    ).fit(X, y)
    assert clf.meta_model_.config["training"]["n_way"] == 3
    assert type(clf.meta_model_.config["training"]["learning_rate"]) is float
