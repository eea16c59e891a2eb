"""Transductive few-shot inference methods, by name: the one registry.

Each method is one module of this package, working on embeddings (no
network, no scikit-learn); this list is where it is registered. The
estimators' ``transductive`` options, error messages and the settings
``transductive_params`` accepts are read from :data:`TRANSDUCTIVE`.
"""

from __future__ import annotations

from .base import TransductiveMethod
from .bdcspn import BDCSPN
from .laplacianshot import LaplacianShot
from .ptmap import PTMAP
from .tim import TIM, AlphaTIM

__all__ = ["TRANSDUCTIVE", "TransductiveMethod", "make_transductive"]

TRANSDUCTIVE: dict[str, type[TransductiveMethod]] = {
    cls.name: cls for cls in (BDCSPN, TIM, AlphaTIM, LaplacianShot, PTMAP)
}


def make_transductive(name: str, **settings) -> TransductiveMethod:
    """Instantiate the transductive method called `name` with its settings.

    Examples
    --------
    >>> make_transductive("alpha-tim", alpha=3.0).alpha
    3.0
    """
    if name not in TRANSDUCTIVE:
        raise ValueError(
            f"transductive={name!r} is unknown; use one of {list(TRANSDUCTIVE)}."
        )
    unknown = sorted(set(settings) - set(TRANSDUCTIVE[name].settings))
    if unknown:
        raise ValueError(
            f"transductive_params has {', '.join(map(repr, unknown))}, which "
            f"transductive={name!r} does not take: it takes "
            f"{', '.join(TRANSDUCTIVE[name].settings)}."
        )
    return TRANSDUCTIVE[name](**settings)
