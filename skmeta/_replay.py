"""The rows ``partial_fit`` keeps of each class, in a
:class:`~skmeta.meta.online.ReplayBuffer`: FewShotClassifier's support rows
(methods that adapt anew) and MetaFeatureExtractor's replay buffer. Both
follow `replay_per_class` as set at each call (``set_params`` included)."""

from __future__ import annotations

import copy
import warnings

from sklearn.utils import check_random_state

from ._tasks import CLASSIFICATION
from .meta.caller import user_stacklevel
from .meta.online import ReplayBuffer

__all__ = [
    "DEFAULT_REPLAY_PER_CLASS",
    "check_replay_fits_an_episode",
    "extractor_replay_per_class",
    "replay_buffer",
    "support_buffer",
]

# Rows per class the extractor's replay buffer keeps when replay_per_class is
# None: room for a default episode (1 shot + 15 queries) and up to 5 shots,
# and all of Omniglot's 20.
DEFAULT_REPLAY_PER_CLASS = 20


def _seed(estimator) -> int:
    return int(check_random_state(estimator.random_state).randint(2**31 - 1))


def _resized(buffer: ReplayBuffer, per_class: int | None, value) -> ReplayBuffer:
    """A copy of `buffer` that keeps `per_class` rows of each class (None:
    all), `value` being ``replay_per_class`` as set; a warning if the cap
    rose after rows were dropped, which cannot come back."""
    buffer, before = copy.deepcopy(buffer), buffer.per_class
    if buffer.resize(per_class):
        now = "every row" if per_class is None else f"{per_class} rows"
        warnings.warn(
            f"replay_per_class={value!r} now keeps {now} of each class, up from "
            f"{before}, but the rows dropped before cannot come back: each "
            f"class keeps at most {before} of the rows it had, and rows added "
            "from now on fill the rest, so they are over-represented.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return buffer


def support_buffer(clf) -> ReplayBuffer:
    """A new buffer of FewShotClassifier's kept support rows (a reference to
    fit's rows, or a buffer), with `replay_per_class` rows of each class as
    set now (None: all); the kept ones are not modified."""
    support = clf._support
    if isinstance(support, ReplayBuffer):
        return _resized(support, clf.replay_per_class, clf.replay_per_class)
    buffer = ReplayBuffer(clf.replay_per_class, _seed(clf))
    buffer.add(*support)
    return buffer


def extractor_replay_per_class(ext) -> int:
    """Rows per class of MetaFeatureExtractor's replay buffer: its
    `replay_per_class`, or, when None, 20 or ``k_shot + n_query`` (the unset
    one at its default: 1 shot, 15 queries) when they need more."""
    if ext.replay_per_class is not None:
        return ext.replay_per_class
    k_shot = ext.k_shot or CLASSIFICATION.default_k_shot
    n_query = ext.n_query or CLASSIFICATION.default_n_query
    return max(DEFAULT_REPLAY_PER_CLASS, k_shot + n_query)


def check_replay_fits_an_episode(ext) -> None:
    """ValueError if the extractor's replay buffer keeps fewer rows of each
    class than one of its episodes takes (``k_shot + n_query``, 1 each when
    None): no class could ever fill one."""
    need = (ext.k_shot or 1) + (ext.n_query or 1)
    if need > extractor_replay_per_class(ext):
        raise ValueError(
            f"replay_per_class={ext.replay_per_class} keeps fewer rows of each "
            f"class than an episode takes: k_shot={ext.k_shot!r} + n_query="
            f"{ext.n_query!r} needs {need} (1 each when None). partial_fit "
            "draws its episodes from the replay buffer: raise replay_per_class "
            f"to {need} or more, or lower k_shot or n_query."
        )


def replay_buffer(ext) -> ReplayBuffer:
    """A new copy of MetaFeatureExtractor's replay buffer (an empty one at
    the first ``partial_fit``), with :func:`extractor_replay_per_class` rows
    of each class as set now; the kept one is not modified."""
    per_class = extractor_replay_per_class(ext)
    kept = getattr(ext, "_replay", None)
    if kept is None:
        return ReplayBuffer(per_class, _seed(ext))
    return _resized(kept, per_class, ext.replay_per_class)
