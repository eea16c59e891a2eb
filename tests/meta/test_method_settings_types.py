"""Method settings are checked by the rules of the estimators' own parameters:
a bool is True or False, an int is integral and no bool, a float is a finite
real and no bool (numpy scalars are taken). A wrong value fails with an error
naming the setting; it used to be converted (``bool("False")`` is True,
``int(True)`` is 1) or to fail with a Python error naming nothing."""

import re

import numpy as np
import pytest

from skmeta.meta.algorithms import ALGORITHMS, make_algorithm
from skmeta.meta.transductive import TRANSDUCTIVE, make_transductive

# wrong values of each kind of setting (range errors too)
BOOL = ("False", "no", 1, 0, 1.0, None, [True])
INT = ("two", "3", 2.5, 4.0, np.float64(3.0), True, False, [2], 0, -1)
REAL = ("x", "0.5", True, None, float("nan"), float("inf"), [0.5], 0.0, -1.0)
GRADIENT = {
    "inner_lr": REAL + (3.5e38,),  # beyond float32
    "inner_steps": INT,
    "inner_batch_size": INT + ("Auto",),
}
MAML = {**GRADIENT, "first_order": BOOL}
OPTIONS = ("x", True, 1, [None], np.array(["l2", "cl2n"]))
PROTOTYPES = {"distance": OPTIONS + (None,), "feature_norm": OPTIONS}
POSITIVE_OR_ZERO = REAL[:-2] + (-1.0,)
COUNT = INT[:-2] + (-1,)  # 0 is taken
WEIGHTS = ("abc", 1.0, (1, 1), (1, "x", 1), (1, True, 1), (1, float("nan"), 1))
TIM = {
    "temperature": REAL,
    "loss_weights": WEIGHTS + ((1, -1, 1),),
    "n_iter": COUNT,
    "lr": REAL,
}
MANN_SIZES = (
    "memory_slots",
    "slot_width",
    "controller_size",
    "read_heads",
    "input_width",
)

# (method, setting) -> wrong values
WRONG = {
    **{("maml", k): v for k, v in MAML.items()},
    **{("fomaml", k): v for k, v in MAML.items()},
    **{("metasgd", k): v for k, v in MAML.items()},
    **{("anil", k): v for k, v in MAML.items()},
    **{("protomaml", k): v for k, v in MAML.items()},
    **{("reptile", k): v for k, v in GRADIENT.items()},
    **{
        (m, k): v
        for m in ("protonet", "pretrain", "baseline++")
        for k, v in PROTOTYPES.items()
    },
    ("protonet", "margin"): POSITIVE_OR_ZERO,
    **{("rfs", k): v for k, v in PROTOTYPES.items()},
    ("rfs", "generations"): COUNT,
    ("rfs", "temperature"): REAL,
    ("rfs", "alpha"): POSITIVE_OR_ZERO,
    ("rfs", "beta"): POSITIVE_OR_ZERO,
    ("feat", "temperature"): REAL,
    ("feat", "balance"): POSITIVE_OR_ZERO,
    ("feat", "aux_temperature"): REAL,
    ("relation", "hidden"): INT,
    ("relation", "loss"): OPTIONS + (None,),
    ("frn", "channels"): INT,
    ("r2d2", "alpha"): REAL,
    ("metaoptnet", "C"): REAL,
    ("matching", "full_context"): BOOL,
    ("matching", "read_steps"): INT,
    **{("mann", k): INT for k in MANN_SIZES},
    ("mann", "usage_decay"): REAL + (1.5,),
    # transductive methods (transductive_params)
    ("bdcspn", "temperature"): REAL,
    ("bdcspn", "shift"): BOOL,
    ("laplacianshot", "lam"): POSITIVE_OR_ZERO,
    ("laplacianshot", "knn"): INT,
    ("laplacianshot", "n_iter"): INT,
    ("laplacianshot", "rectify"): BOOL,
    ("laplacianshot", "center"): OPTIONS + (None,),
    ("ptmap", "beta"): REAL,
    ("ptmap", "lam"): REAL,
    ("ptmap", "alpha"): REAL + (1.5,),
    ("ptmap", "n_iter"): COUNT,
    **{("tim", k): v for k, v in TIM.items()},
    **{("alpha-tim", k): v for k, v in TIM.items()},
    ("alpha-tim", "alpha"): tuple(v for v in REAL if v is not None) + (1.0, 1),
}

# method -> settings of the right types, numpy scalars where numbers go
RIGHT = {
    **{
        method: {
            "inner_lr": np.float32(0.25),
            "inner_steps": np.int64(3),
            "first_order": np.bool_(True),
            "inner_batch_size": np.int32(8),
        }
        for method in ("maml", "fomaml", "metasgd", "anil", "protomaml")
    },
    "reptile": {
        "inner_lr": np.float64(0.25),
        "inner_steps": np.int8(3),
        "inner_batch_size": np.int16(4),
    },
    **{
        method: {"distance": np.str_("cosine"), "feature_norm": np.str_("cl2n")}
        for method in ("pretrain", "baseline++")
    },
    "protonet": {"distance": "cosine", "feature_norm": None, "margin": np.float32(1)},
    "rfs": {
        "distance": np.str_("cosine"),
        "feature_norm": None,
        "generations": np.int64(2),
        "temperature": np.float32(2.0),
        "alpha": np.int64(0),
        "beta": np.float64(1.5),
    },
    "feat": {
        "temperature": np.float32(2),
        "balance": np.float64(0.5),
        "aux_temperature": np.int64(8),
    },
    "relation": {"hidden": np.int16(16), "loss": np.str_("cross_entropy")},
    "frn": {"channels": np.uint8(8)},
    "r2d2": {"alpha": np.float16(0.5)},
    "metaoptnet": {"C": np.int32(2)},
    "matching": {"full_context": np.bool_(True), "read_steps": np.int64(2)},
    "mann": {
        **{name: np.int64(4) for name in MANN_SIZES},
        "usage_decay": np.float32(0.5),
    },
    "bdcspn": {"temperature": np.float32(5), "shift": np.bool_(False)},
    "laplacianshot": {
        "lam": np.int64(0),
        "knn": np.int64(5),
        "n_iter": np.int32(3),
        "rectify": np.bool_(False),
        "center": np.str_("base"),
    },
    "ptmap": {
        "beta": np.float64(0.25),
        "lam": np.int64(5),
        "alpha": np.float32(0.5),
        "n_iter": np.int64(0),
    },
    **{
        name: {
            "temperature": np.float32(10),
            "loss_weights": np.array([0.5, 1, 0]),
            "n_iter": np.int64(0),
            "lr": np.float64(1e-3),
        }
        for name in ("tim", "alpha-tim")
    },
}
RIGHT["alpha-tim"]["alpha"] = np.float64(3)


def make(name, **settings):
    """The meta-learning or transductive method called `name`."""
    if name in TRANSDUCTIVE:
        return make_transductive(name, **settings)
    return make_algorithm(name, **settings)


def kept_settings(method) -> dict:
    """The settings `method` holds, by name."""
    if hasattr(method, "method_params"):
        return method.method_params()
    return {name: getattr(method, name) for name in method.settings}


CASES = [
    pytest.param(method, setting, value, id=f"{method}-{setting}-{value!r}")
    for (method, setting), values in WRONG.items()
    for value in values
]


@pytest.mark.parametrize("method, setting, value", CASES)
def test_wrong_value_is_refused_naming_the_setting(method, setting, value):
    with pytest.raises((ValueError, TypeError), match=re.escape(setting)) as info:
        make(method, **{setting: value})
    assert "must be" in str(info.value)


@pytest.mark.parametrize("method", sorted(RIGHT))
def test_right_values_are_taken_as_python_values(method):
    settings = RIGHT[method]
    kept = kept_settings(make(method, **settings))
    for name, value in settings.items():
        assert np.array_equal(kept[name], value), name
        items = kept[name] if isinstance(kept[name], tuple) else (kept[name],)
        python = (bool, int, float, str, type(None))
        assert all(type(v) in python for v in items), (name, kept)


@pytest.mark.parametrize("name", [*ALGORITHMS, *TRANSDUCTIVE])
def test_every_setting_of_every_method_is_tried(name):
    """A new method or setting joins the tables above."""
    registry = TRANSDUCTIVE if name in TRANSDUCTIVE else ALGORITHMS
    for setting in registry[name].settings:
        assert (name, setting) in WRONG, setting
        assert setting in RIGHT[name], setting


def test_gradient_methods_take_python_values_unchanged():
    maml = make_algorithm(
        "maml", inner_lr=1, inner_steps=2, first_order=False, inner_batch_size=None
    )
    assert (maml.inner_lr, maml.inner_steps, maml.first_order) == (1.0, 2, False)
    assert maml.inner_batch_size is None
    assert make_algorithm("maml", regression=np.bool_(True)).regression is True
    with pytest.raises(ValueError, match="regression must be a bool"):
        make_algorithm("maml", regression="yes")


def test_estimator_names_the_setting_of_method_params(blobs):
    from skmeta import FewShotClassifier

    X, y = blobs
    clf = FewShotClassifier(method="maml", method_params={"inner_steps": "two"})
    with pytest.raises(ValueError, match="inner_steps must be an int >= 1"):
        clf.fit(X[:40], y[:40])
    clf = FewShotClassifier(method="maml", method_params={"first_order": "False"})
    with pytest.raises(TypeError, match="first_order must be a bool"):
        clf.fit(X[:40], y[:40])
    clf = FewShotClassifier(transductive="bdcspn", transductive_params={"shift": "no"})
    with pytest.raises(ValueError, match="shift must be a bool"):
        clf.fit(X[:40], y[:40])


@pytest.mark.parametrize(
    "method, setting, most",
    [
        *((m, "inner_steps", 10_000) for m in ("maml", "anil", "reptile", "metasgd")),
        ("matching", "read_steps", 1_000),
        ("mann", "memory_slots", 65_536),
    ],
)
def test_settings_of_work_no_weight_reflects_have_a_bound(method, setting, most):
    """Counts of steps and memory sizes that no weight's shape reflects are
    bounded: a model file's value is what fit runs, and 10**30 inner steps
    never ended (their memory growing), a million MANN memory rows took
    3.8 GB, 10**9 asked for 160 GB."""
    assert getattr(make_algorithm(method, **{setting: most}), setting) == most
    with pytest.raises(ValueError, match=f"{setting} must be an int >= 1 and <= "):
        make_algorithm(method, **{setting: most + 1})
