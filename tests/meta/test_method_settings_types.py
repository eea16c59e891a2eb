"""Method settings are checked by the rules of the estimators' own parameters:
a bool is True or False, an int is integral and no bool, a float is a finite
real and no bool (numpy scalars are taken). A wrong value fails with an error
naming the setting; it used to be converted (``bool("False")`` is True,
``int(True)`` is 1) or to fail with a Python error naming nothing."""

import re

import numpy as np
import pytest

from skmeta.meta.algorithms import make_algorithm

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
    ("protonet", "margin"): REAL[:-2] + (-1.0,),  # 0 is taken
    **{("rfs", k): v for k, v in PROTOTYPES.items()},
    ("rfs", "generations"): INT[:-2] + (-1,),  # 0 is taken
    ("rfs", "temperature"): REAL,
    ("rfs", "alpha"): REAL[:-2] + (-1.0,),
    ("rfs", "beta"): REAL[:-2] + (-1.0,),
    ("feat", "temperature"): REAL,
    ("feat", "balance"): REAL[:-2] + (-1.0,),
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
    "reptile": {"inner_lr": np.float64(0.25), "inner_steps": np.int8(3)},
    **{
        method: {"distance": np.str_("cosine"), "feature_norm": np.str_("cl2n")}
        for method in ("pretrain", "baseline++")
    },
    "protonet": {"distance": "cosine", "feature_norm": None, "margin": np.float32(1)},
    "rfs": {
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
}

CASES = [
    pytest.param(method, setting, value, id=f"{method}-{setting}-{value!r}")
    for (method, setting), values in WRONG.items()
    for value in values
]


@pytest.mark.parametrize("method, setting, value", CASES)
def test_wrong_value_is_refused_naming_the_setting(method, setting, value):
    with pytest.raises((ValueError, TypeError), match=re.escape(setting)) as info:
        make_algorithm(method, **{setting: value})
    assert "must be" in str(info.value)


@pytest.mark.parametrize("method", sorted(RIGHT))
def test_right_values_are_taken_as_python_values(method):
    settings = RIGHT[method]
    algorithm = make_algorithm(method, **settings)
    for name, value in settings.items():
        kept = algorithm.method_params()[name]
        assert kept == value
        assert type(kept) in (bool, int, float, str, type(None)), (name, kept)


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
