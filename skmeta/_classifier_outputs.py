"""What a fitted FewShotClassifier answers: class scores, probabilities
divided by the model's calibrated temperature, and labels, with "none of
these" (`unknown_label`) for queries far from every class. A mixin of
:class:`~skmeta.FewShotClassifier`, whose module holds its parameters and
fitting."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import softmax

from ._checks import same_value
from ._fast_checks import check_fitted
from ._online import mask_classes_without_rows
from ._typing import ArrayLike
from .meta.calibration import known_score_threshold
from .meta.caller import user_stacklevel

__all__ = ["ClassifierOutputs"]


class ClassifierOutputs:
    """``decision_function``, ``predict_proba`` and ``predict`` of a fitted
    few-shot classifier, and the temperature and open-set threshold they use
    (set by ``fit`` through :meth:`_set_open_set`)."""

    def _set_open_set(self) -> None:
        """The temperature of the model, and the open-set threshold."""
        self._fitted_outputs = self._output_settings()
        record = self.meta_model_.config.get("calibration")
        if self.transductive is not None:  # scores of another scale than those
            record = None  # the temperature and thresholds were fitted to
            if self.unknown_label is not None:
                raise ValueError(
                    "unknown_label does not apply with transductive="
                    f"{self.transductive!r}: the open-set threshold was measured "
                    "on the model's inductive scores. Leave one of them None."
                )
        changed = "" if record is None else self._changed_adaptation()
        if changed:  # the record was fitted to the model's own settings
            record = None
            if self.unknown_label is not None:
                raise ValueError(
                    f"unknown_label does not apply with the adaptation settings "
                    f"{changed}: the open-set threshold was measured on scores "
                    "adapted with the model's own. Leave them None, or "
                    "unknown_label None."
                )
            warnings.warn(
                f"The adaptation settings {changed} differ from those the "
                "model's temperature was calibrated with, so predict_proba uses "
                "temperature 1 (uncalibrated). Leave them None for calibrated "
                "probabilities.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        self.temperature_ = 1.0 if record is None else float(record["temperature"])
        if self.unknown_label is None:
            if self.rejection_rate is not None:
                raise ValueError(
                    f"rejection_rate={self.rejection_rate!r} applies only with "
                    "unknown_label; set unknown_label (e.g. -1) or leave "
                    "rejection_rate=None."
                )
            return
        if record is None:
            raise ValueError(
                "unknown_label needs a model meta-trained with calibrate=True (or "
                "early_stopping=True), which records the scores of known-class "
                "queries on held-out classes; this model has none."
            )
        # a list's `in`: numpy 1.x compares str classes with an int label as one
        # scalar, with a FutureWarning
        if self.unknown_label in self.classes_.tolist():
            raise ValueError(
                f"unknown_label={self.unknown_label!r} is one of the classes in "
                "y; choose a label that is not."
            )
        rate = 0.05 if self.rejection_rate is None else self.rejection_rate
        self.unknown_threshold_ = known_score_threshold(record, rate)

    def _changed_adaptation(self) -> str:
        """The adaptation settings that change the scores from those the
        calibration was fitted on (e.g. ``"feature_norm='l2'"``), or '': the
        method's, given with `pretrained` and differing from the model's, and
        test-time views (calibration saw none; with views, temperature 1 was
        the better calibrated: ECE 0.45-1.75% against 2.19-4.36% on 20-way
        1-shot Omniglot episodes, ``benchmarks/results/calibration_views.md``)."""
        recorded = self.meta_model_.config["method_params"]
        changed = {
            name: value
            for name, value in self._overrides.items()
            if value != recorded.get(name)
        }
        if self.test_time_shifts is not None:  # any sequence, arrays too
            changed["test_time_shifts"] = [int(s) for s in self.test_time_shifts]
        if self.test_time_turns not in (False, None):
            changed["test_time_turns"] = self.test_time_turns
        return ", ".join(f"{name}={value!r}" for name, value in changed.items())

    def _output_settings(self) -> dict:
        """The parameters ``fit`` turns into the fitted state that scoring
        reads (the threshold, the transductive state)."""
        names = ("unknown_label", "rejection_rate", "transductive")
        return {name: getattr(self, name) for name in names}

    def _outputs(self, X):
        fitted = getattr(self, "_fitted_outputs", None)
        if fitted is not None:
            changed = [
                name
                for name, value in self._output_settings().items()
                if not same_value(value, fitted[name])
            ]
            if changed:
                raise ValueError(
                    f"{', '.join(changed)} changed since fit (set_params after "
                    "fit): the fitted state was built with "
                    + ", ".join(f"{name}={fitted[name]!r}" for name in changed)
                    + "; call fit again."
                )
        return mask_classes_without_rows(self, super()._outputs(X))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Class scores of X, higher for more likely classes.

        For ProtoNet, minus the squared distances to the prototypes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query rows.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) with 2 classes
            The scores, float32 like the network; with 2 classes, the score of
            ``classes_[1]`` minus that of ``classes_[0]``.
        """
        check_fitted(self)
        logits = self._outputs(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities (softmax of the class scores).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query rows.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities of ``classes_``, each row summing to 1: the softmax
            of the class scores divided by ``temperature_`` (calibrated on
            held-out classes when the model was meta-trained with
            `calibrate`).
        """
        check_fitted(self)
        # float64: scores near float32's limit divided by a temperature below
        # 1 would overflow to inf, and their softmax be NaN
        scores = self._outputs(X).astype(np.float64) / self.temperature_
        return softmax(scores, axis=1).astype(np.float32)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Label of the most likely class for each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query rows.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``, or `unknown_label` for the queries whose
            best score is below ``unknown_threshold_``.

        Notes
        -----
        The label is that of the highest :meth:`decision_function` score, the
        first of ``classes_`` on an exact tie, as is the argmax of
        :meth:`predict_proba`, except where two scores differ by less than
        float32 probabilities resolve (e.g. scores of -2.6e-5 that differ by
        1e-11): their probabilities are then equal, and this the higher score.
        """
        check_fitted(self)
        scores = self._outputs(X)
        best = scores.argmax(axis=1)
        if self.unknown_label is None:
            return self.classes_[best]
        unknown = np.asarray([self.unknown_label])
        kinds = {self.classes_.dtype.kind, unknown.dtype.kind}
        # one dtype for numbers only or strings only; never numbers as strings
        same = kinds <= set("biuf") or len(kinds) == 1
        dtype = np.result_type(self.classes_, unknown) if same else object
        labels = np.concatenate([self.classes_.astype(dtype), unknown.astype(dtype)])
        rejected = scores.max(axis=1) < self.unknown_threshold_
        return labels[np.where(rejected, len(self.classes_), best)]

    def score(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Mean accuracy of :meth:`predict` on X against `y`.

        With `unknown_label`, a rejected query counts as right where `y`
        holds `unknown_label` (any type: scikit-learn's ``accuracy_score``
        refuses numbers beside a string label).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query rows.
        y : array-like of shape (n_samples,)
            True labels, `unknown_label` for queries of no class of the support.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each query in the mean; None weighs them equally.

        Returns
        -------
        float
            The share of queries labelled right.
        """
        if self.unknown_label is None:
            return super().score(X, y, sample_weight=sample_weight)
        predicted = np.asarray(self.predict(X), dtype=object)
        truth = np.asarray(y, dtype=object)
        if truth.shape != predicted.shape:
            raise ValueError(
                f"y has {truth.shape[0]} labels for {predicted.shape[0]} rows of X."
            )
        return float(np.average(predicted == truth, weights=sample_weight))
