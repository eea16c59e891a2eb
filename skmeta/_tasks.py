"""Classification or regression: what differs between the estimators' fits.

The estimators share one flow (``_base.py``). A task object supplies what
differs: the methods that fit, the default method and settings, how targets are
checked and encoded, the default episode sizes, and the kind of pretrained
model that fits. Everything said about methods is read from the registry,
``skmeta.meta.algorithms.ALGORITHMS``.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import validate_data

from ._checks import check_float32_range
from ._class_labels import check_class_labels, refuse_missing_labels
from ._fast_checks import checked_support
from ._fit_groups import group_codes, missing_groups
from ._held_out import (
    check_classes_left,
    check_tasks_left,
    held_out_classes,
    held_out_note,
    warn_if_calibrated_on_fewer_ways,
)
from ._sklearn_compat import BackboneOptions, Options, StrOptions
from ._transductive import (
    UNLABELLED,
    minus_one_read_as_unlabelled,
    native_labels,
    unlabelled_rows,
)
from .meta.algorithms import ALGORITHMS, settle_pending
from .meta.backbones import BUILTIN_BACKBONES
from .meta.caller import user_stacklevel
from .meta.within_group import class_groups

__all__ = ["CLASSIFICATION", "FIT_DTYPES", "REGRESSION", "available_methods"]

# Dtypes `fit` keeps as given (any other becomes float32): meta-training reads
# rows one batch at a time and converts only those, so a uint8 or float64 array,
# or a memory map of one, is never copied whole (skmeta.meta.rows).
FIT_DTYPES = [np.float32, np.float64, np.uint8]


# False, as a bool or NumPy's (scikit-learn's "boolean" takes both)
FALSE_ONLY = [Options(bool, {False}), Options(np.bool_, {np.False_})]


def _shot_sizes(estimator, budget: int, k_default: int, q_default: int):
    """(k_shot, n_query): the estimator's, or defaults fitted to `budget` rows."""
    k_shot = estimator.k_shot or max(1, min(k_default, budget // 2))
    n_query = estimator.n_query or max(1, min(q_default, budget - k_shot))
    return k_shot, n_query


class Task:
    """What a kind of estimator (classification or regression) decides."""

    name: str
    regression: bool
    default_method: str
    default_settings: dict = {}  # method settings left None, when they apply

    def methods(self) -> dict[str, str]:
        """{name: one-line summary} of the registered methods for this task."""
        settle_pending()  # a plugin's alias, once its module has imported
        return {
            name: cls.summary
            for name, cls in ALGORITHMS.items()
            if cls.supports_regression or not self.regression
        }

    def constraints(self) -> dict:
        """Parameter constraints that depend on the task."""
        return {"method": [StrOptions(set(self.methods())), None]}

    def check_model(self, model, estimator) -> None:
        """Refuse a pretrained model meta-trained for the other task."""
        if model.algorithm().regression != self.regression:
            raise ValueError(
                self.wrong_model.format(
                    method=model.method, estimator=type(estimator).__name__
                )
            )


class Classification(Task):
    """Class labels; episodes of up to 20 ways, 1 shot and 15 queries."""

    name = "classification"
    regression = False
    default_method = "protonet"
    # episode size when k_shot, n_query are None (fewer for small classes)
    default_k_shot, default_n_query = 1, 15
    wrong_model = (
        "The pretrained model was meta-trained for regression (by a "
        "FewShotRegressor, method={method!r}); {estimator} needs a classification "
        "model."
    )

    def constraints(self) -> dict:
        return {
            **super().constraints(),
            "backbone": [BackboneOptions({"auto", *BUILTIN_BACKBONES}), callable],
            "normalize_y": FALSE_ONLY,  # no targets to scale
        }

    def validate(self, estimator, X, y, groups=None, classes_declared=None):
        """Checked X and class codes ``0..n_classes-1``, twice (what adaptation
        and episodes take); y may be None only to reuse a pretrained model.
        With a classifier's `transductive` set, rows labelled -1 are
        unlabelled: their code is -1 and they name no class.

        For a classifier, also sets ``classes_`` (y's labels, and `classes`
        when ``partial_fit`` declares them) and requires two classes.
        """
        if y is None and estimator.pretrained is not None:
            if not is_classifier(estimator):  # an extractor needs no labels
                return validate_data(estimator, X, dtype=np.float32), None, None
            raise ValueError(  # scikit-learn's wording, which its checks expect
                f"{type(estimator).__name__} requires y to be passed, but the "
                "target y is None: fit adapts to the labelled support set (X, y)."
            )
        refuse_missing_labels(estimator, y)
        X, y = checked_support(estimator, X, y, FIT_DTYPES)
        check_float32_range(X, "X")
        unlabelled = np.zeros(len(y), dtype=bool)
        if is_classifier(estimator) and estimator.transductive is not None:
            # y == -1, as sklearn.semi_supervised (also among string labels)
            unlabelled = unlabelled_rows(y)
            if unlabelled.all():
                raise ValueError(
                    "Every row of y is -1 (unlabelled); transductive inference "
                    "needs at least one labelled row of each class."
                )
        labels = native_labels(y[~unlabelled])  # bools beside -1: bools again
        check_class_labels(labels)
        classes, known = np.unique(labels, return_inverse=True)
        if classes_declared is not None:
            from ._online import declared_classes  # partial_fit's `classes`

            classes = declared_classes(classes_declared, classes)
            known = np.searchsorted(classes, labels)
        codes = np.full(len(y), UNLABELLED, dtype=known.dtype)
        codes[~unlabelled] = known
        estimator._seen_classes = classes  # recorded in the model's provenance
        if is_classifier(estimator):
            if classes.size < 2 and unlabelled.any():  # e.g. classes -1 and 1
                raise ValueError(
                    f"{type(estimator).__name__} needs at least 2 classes in y; "
                    f"got 1 labelled class ({classes[0]!r}) with transductive="
                    f"{estimator.transductive!r}. "
                    + minus_one_read_as_unlabelled("its rows name no class")
                    + " (Meant as unlabelled rows: give labelled rows of 2 "
                    "classes or more.)"
                )
            if classes.size < 2:
                raise ValueError(
                    f"{type(estimator).__name__} needs at least 2 classes in y; got "
                    f"1 class ({classes[0]!r})."
                )
            estimator.classes_ = classes
        return X, codes, codes

    def episode_groups(self, estimator, groups, labels) -> np.ndarray | None:
        """Group codes of the rows for `within_group_episodes` (None when it
        is 0: then `groups` are unused, and a warning says so), checked to
        give every class of `labels` (codes, -1 unlabelled) one group."""
        share = estimator.within_group_episodes
        if groups is None:
            if share > 0:
                raise missing_groups(estimator, share)
            return None
        if share == 0:
            warnings.warn(
                f"{type(estimator).__name__} uses groups only to draw "
                "meta-training episodes within a group; with "
                "within_group_episodes=0 they are ignored.",
                UserWarning,
                stacklevel=4,
            )
            return None
        codes = group_codes(groups, len(labels))
        known = labels != UNLABELLED
        class_groups(codes[known], labels[known], 1, estimator._seen_classes)
        return codes

    def episode_sizes(
        self, estimator, labels: np.ndarray, groups: np.ndarray | None = None
    ) -> tuple[int, int, int]:
        """Final (n_way, k_shot, n_query): the estimator's, or fitted to the
        class sizes of `labels` (and, with `groups` for within-group
        episodes, to the largest group's classes when `n_way` is None)."""
        by_class = np.bincount(labels)
        counts = np.sort(by_class)[::-1]
        counts = counts[counts > 0]
        held = held_out_classes(estimator, counts.size)
        check_classes_left(estimator, counts.size, held)
        if estimator.n_way is not None and estimator.n_way > counts.size - held:
            raise ValueError(
                f"n_way={estimator.n_way} exceeds the number of classes in y "
                f"({counts.size}){held_out_note(estimator, held)}; lower n_way "
                "or leave it None."
            )
        need = (estimator.k_shot or 1) + (estimator.n_query or 1)
        # the classes held out for validation are drawn at random: those left
        # include at least this many with `need` rows
        n_way = estimator.n_way or min(20, int((counts >= need).sum()) - held)
        in_group = ""
        if estimator.n_way is None and groups is not None:
            # within-group episodes: as many ways as the largest group holds
            eligible = np.flatnonzero(by_class >= need)
            group_of = np.zeros(by_class.size, dtype=np.int64)
            group_of[labels] = groups
            sizes = np.unique(group_of[eligible], return_counts=True)[1]
            largest = int(sizes.max(initial=0))  # 0: no class has `need` rows
            if largest == 1 and n_way >= 2:  # enough classes, but apart
                in_group = (
                    " in one group for within_group_episodes (the largest "
                    "group has 1; give groups more classes, or set "
                    "within_group_episodes=0)"
                )
            n_way = min(n_way, largest)
        if n_way < 2:
            raise ValueError(
                f"Meta-training needs at least 2 classes with {need} samples each "
                f"(k_shot + n_query){in_group}; y has {int((counts >= need).sum())} "
                f"(n_samples={int(counts.sum())})"
                f"{held_out_note(estimator, held)}. Add samples, lower "
                "k_shot or n_query, or pass a pretrained model."
            )
        warn_if_calibrated_on_fewer_ways(estimator, held, n_way)
        # samples of the n_way-th largest class left after any held-out ones
        budget = int(counts[n_way - 1 + held])
        k_shot, n_query = _shot_sizes(
            estimator, budget, self.default_k_shot, self.default_n_query
        )
        if k_shot + n_query > budget:
            raise ValueError(
                f"A {n_way}-way episode with k_shot={k_shot} and n_query={n_query} "
                f"needs {n_way} classes with {k_shot + n_query} samples each; y has "
                f"only {int((counts >= k_shot + n_query).sum())}. Lower n_way, "
                "k_shot or n_query, or add samples."
            )
        return n_way, k_shot, n_query

    def default_meta_batch_size(self, labels: np.ndarray) -> int:
        """`meta_batch_size` when left None: one episode per meta-update."""
        return 1

    def n_outputs(self, estimator) -> int:
        """The ``n_classes`` adaptation gets."""
        return len(estimator.classes_)


class Regression(Task):
    """Real targets, tasks as ``groups``; one task per episode, up to 10 shots
    and 10 queries; inner learning rate 0.01 (MAML's sinusoid setting)."""

    name = "regression"
    regression = True
    default_method = "maml"
    default_settings = {"inner_lr": 0.01}
    wrong_model = (
        "The pretrained model was meta-trained for classification "
        "(method={method!r}); {estimator} needs one meta-trained by a "
        "FewShotRegressor."
    )

    def constraints(self) -> dict:
        # an episode is one task (a group): no ways, no classes to augment
        return {
            **super().constraints(),
            "backbone": [StrOptions({"auto", "mlp"}), callable],
            "n_way": [None],
            "class_augmentation": [None],
            # no classes: nothing to calibrate, nothing unknown
            "calibrate": [StrOptions({"auto"}), *FALSE_ONLY],
            "unknown_label": [None],
            "rejection_rate": [None],
            "replay_per_class": [None],  # no partial_fit
            "within_group_episodes": [Options(Real, {0})],  # no classes
            "transductive": [None],
            "transductive_params": [None],
        }

    def validate(self, estimator, X, y, groups=None, classes_declared=None):
        """Checked X, float32 targets, and each row's task code
        (`classes_declared`: classification only, always None here)."""
        X, y = checked_support(estimator, X, y, FIT_DTYPES, y_numeric=True)
        check_float32_range(X, "X")
        check_float32_range(y, "y")
        if groups is None:
            return X, y.astype(np.float32), np.zeros(len(y), dtype=np.int64)
        return X, y.astype(np.float32), group_codes(groups, len(y))

    def episode_groups(self, estimator, groups, labels) -> None:
        """None: a regressor's groups are its tasks (see :meth:`validate`)."""
        return None

    def episode_sizes(
        self, estimator, labels: np.ndarray, groups: np.ndarray | None = None
    ) -> tuple[int, int, int]:
        """(1, k_shot, n_query): the estimator's, or fitted to the smallest task
        (`groups` unused: a regressor's tasks are its groups)."""
        n_tasks = int(np.unique(labels).size)
        check_tasks_left(estimator, n_tasks, held_out_classes(estimator, n_tasks))
        sizes = np.bincount(labels)
        smallest = int(sizes.min())
        k_shot, n_query = _shot_sizes(estimator, smallest, 10, 10)
        typical = _shot_sizes(estimator, int(np.median(sizes)), 10, 10)
        if typical != (k_shot, n_query):  # sizes left None fit the smallest task
            warnings.warn(
                f"k_shot and n_query left None fit the smallest task ({smallest} "
                f"rows): every episode is {k_shot}-shot {n_query}-query, though the "
                f"median task has {int(np.median(sizes))} rows. Set k_shot and "
                "n_query, or leave the small tasks out.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        if k_shot + n_query > smallest:
            raise ValueError(
                f"Each task (group) needs k_shot + n_query = {k_shot + n_query} rows; "
                f"the smallest has {smallest} (n_samples={len(labels)}). Lower "
                "k_shot or n_query, or give bigger tasks."
            )
        return 1, k_shot, n_query

    def default_meta_batch_size(self, labels: np.ndarray) -> int:
        """`meta_batch_size` when left None: 25 tasks per meta-update (MAML's
        sine-wave setting) when there are several tasks, else 1. One task per
        update left a default sine-wave regressor at MSE 1.33 (5 shots)
        against 0.56 with 25 (``benchmarks/results/defaults.md``)."""
        return 25 if np.unique(labels).size > 1 else 1

    def n_outputs(self, estimator) -> int:
        return 1


CLASSIFICATION, REGRESSION = Classification(), Regression()
_TASKS = {task.name: task for task in (CLASSIFICATION, REGRESSION)}


def available_methods(task: str = "classification") -> dict[str, str]:
    """The meta-learning methods the estimators accept as ``method``.

    Read from the registry of the torch layer, so a newly registered method
    appears here, and in the estimators' checks and messages, without any
    estimator change.

    .. versionadded:: 0.1

    Parameters
    ----------
    task : {"classification", "regression"}, default="classification"
        ``"classification"`` for :class:`FewShotClassifier` and
        :class:`MetaFeatureExtractor`, ``"regression"`` for
        :class:`FewShotRegressor`.

    Returns
    -------
    dict
        Method name -> one-line summary, in registration order.

    Examples
    --------
    >>> from skmeta import available_methods
    >>> "protonet" in available_methods(), "protonet" in available_methods(
    ...     "regression"
    ... )
    (True, False)
    """
    if task not in _TASKS:
        raise ValueError(
            f"task={task!r} is unknown; use 'classification' or 'regression'."
        )
    return _TASKS[task].methods()
