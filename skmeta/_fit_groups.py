"""The ``groups`` of ``fit``: checked into codes, and the error when
within-group episodes need them and none came (``cross_validate`` and the
searches give them to the splitter only, unless metadata routing sends them
to ``fit`` too)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import column_or_1d

__all__ = ["group_codes", "missing_groups"]


def group_codes(groups, n_rows: int) -> np.ndarray:
    """Codes ``0..n_groups-1`` of `groups`, one value per row."""
    groups = column_or_1d(groups)
    if len(groups) != n_rows:
        raise ValueError(f"groups has {len(groups)} values but X has {n_rows} rows.")
    try:
        return np.unique(groups, return_inverse=True)[1]
    except TypeError:  # e.g. strings and numbers mixed: they do not sort
        raise TypeError(
            "groups mixes values of types that cannot be compared; give "
            "every group an id of one type (all ints, or all strings)."
        ) from None


def missing_groups(estimator, share: float) -> ValueError:
    """The error of a fit with ``within_group_episodes=share`` and no groups."""
    return ValueError(
        f"within_group_episodes={share!r} draws episodes within groups: pass "
        "fit(X, y, groups=...), the group of each row (e.g. the alphabet of "
        "each character), or set within_group_episodes=0. Inside "
        "cross_validate, GridSearchCV or a Pipeline, groups reach fit only by "
        "metadata routing: sklearn.set_config(enable_metadata_routing=True) "
        f"and {type(estimator).__name__}(...).set_fit_request(groups=True)."
    )
