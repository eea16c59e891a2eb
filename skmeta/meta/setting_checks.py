"""Checks of the settings of meta-learning and transductive methods.

The estimators check their own parameters with scikit-learn's constraints; a
method's settings (``method_params``, ``transductive_params``, or
:func:`~skmeta.meta.algorithms.make_algorithm`'s keywords) are checked here by
the same rules: a bool is ``True`` or ``False`` (``numpy.bool_`` too), an int
is an integral number that is not a bool (``numpy.int64`` too), a float is a
finite real number that is not a bool (numpy scalars too). Strings, floats
for ints and bools for numbers are refused rather than converted, with an
error naming the setting.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "InvalidSetting",
    "check_bool_setting",
    "check_int_setting",
    "check_real_setting",
    "finite_number",
]


class InvalidSetting(ValueError, TypeError):
    """A method setting of the wrong type or out of its range.

    Both a ``ValueError`` and a ``TypeError``, as scikit-learn's
    ``InvalidParameterError`` for the estimators' own parameters.
    """


def finite_number(value) -> bool:
    """Whether `value` is a real number (no bool) whose float is finite.

    JSON holds integers of any size: ``math.isfinite(10**400)`` raises an
    ``OverflowError``, and a list holding an integer beyond int64 becomes a
    NumPy array of Python objects; both are no finite number here.

    Examples
    --------
    >>> finite_number(0.5), finite_number(10**400), finite_number(float("nan"))
    (True, False, False)
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_bool_setting(name: str, value) -> bool:
    """A method's boolean setting, checked: ``True`` or ``False``.

    Parameters
    ----------
    name : str
        The setting's name, for the message.
    value : object
        The value given; a ``numpy.bool_`` is taken.

    Returns
    -------
    bool

    Raises
    ------
    InvalidSetting
        Naming the setting, for any other value (``"False"``, ``0``, None).
    """
    if not isinstance(value, bool | np.bool_):
        raise InvalidSetting(
            f"{name} must be a bool (True or False); got {name}={value!r}."
        )
    return bool(value)


def check_int_setting(
    name: str,
    value,
    minimum: int = 1,
    allow_none: bool = False,
    maximum: int | None = None,
) -> int | None:
    """A method's integer setting, checked: integral, not a bool, at least
    `minimum` and at most `maximum`.

    Parameters
    ----------
    name : str
        The setting's name, for the message.
    value : object
        The value given; numpy integers are taken, floats (even ``4.0``),
        strings and bools are not.
    minimum : int, default=1
        The smallest value accepted.
    allow_none : bool, default=False
        Whether None is accepted (and returned).
    maximum : int or None, default=None
        The largest value accepted (None: any). A count of steps or a size
        that no weight's shape reflects has one, so that a model file (or a
        typo) cannot ask for hours of work or gigabytes of memory.

    Returns
    -------
    int or None

    Raises
    ------
    InvalidSetting
        Naming the setting, otherwise.
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Integral)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        what = f"{'None or ' if allow_none else ''}an int >= {minimum}"
        what += "" if maximum is None else f" and <= {maximum:,}"
        raise InvalidSetting(f"{name} must be {what}; got {name}={value!r}.")
    return int(value)


def check_real_setting(
    name: str, value, allow_zero: bool = False, maximum: float | None = None
) -> float:
    """A method's real-valued setting, checked: finite, above 0 (or at least
    0 with `allow_zero`) and at most `maximum`; numpy scalars are taken,
    bools and strings are not.

    Parameters
    ----------
    name : str
        The setting's name, for the message.
    value : object
        The value given.
    allow_zero : bool, default=False
        Whether 0 is accepted.
    maximum : float or None, default=None
        The largest value accepted (None: any finite value).

    Returns
    -------
    float
        `value` as a Python float.

    Raises
    ------
    InvalidSetting
        Naming the setting, otherwise.
    """
    try:
        ok = (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool | np.bool_)
            and math.isfinite(value)
            and (value >= 0 if allow_zero else value > 0)
            and (maximum is None or value <= maximum)
        )
    except OverflowError:  # an int beyond float's range
        ok = False
    if not ok:
        bound = f"0 {'<=' if allow_zero else '<'} {name}"
        if maximum is not None:
            bound += f" <= {maximum!r}"
        raise InvalidSetting(
            f"{name} must be a finite float, {bound}; got {name}={value!r}."
        )
    return float(value)
