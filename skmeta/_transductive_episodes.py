"""Episodes scored transductively: the queries are the unlabelled rows.

A cross-validation fold gives ``fit`` the support set and ``predict`` (or
``score``) the queries, one after the other, so an estimator with
``transductive`` set would only ever see labelled rows in ``fit`` and fall
back on its inductive form. :class:`TransductiveEpisode` keeps the support set
at ``fit`` and fits the estimator on the support set and the queries together
(the queries labelled ``-1``) when it is asked about them: what
:func:`~skmeta.model_selection.episodic_score` runs for such an estimator.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.utils.validation import check_is_fitted

from ._transductive import UNLABELLED, minus_one_read_as_unlabelled, unlabelled_rows

__all__ = ["TransductiveEpisode", "fit_with_queries", "transductive_of"]


def transductive_of(estimator) -> str | None:
    """The ``transductive`` setting of a classifier, or of the last step of a
    pipeline; None when unset or for any other estimator."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not is_classifier(final):
        return None
    return getattr(final, "transductive", None)


def fit_with_queries(estimator, support_X, support_y, queries):
    """Fit `estimator` on the support rows and the queries, these labelled
    ``-1`` (unlabelled), and return its classifier.

    Parameters
    ----------
    estimator : estimator
        A classifier with ``transductive`` set, or a pipeline ending in one;
        fitted in place.
    support_X : array-like of shape (n_support, n_features)
    support_y : array-like of shape (n_support,)
    queries : array-like of shape (n_queries, n_features)

    Returns
    -------
    classifier : estimator
        `estimator`, or its last step: its ``transduction_[n_support:]`` are
        the labels of the queries, and ``adapted_["unlabelled_scores"]`` of
        shape (n_queries, n_classes) the method's joint scores of them.

    Raises
    ------
    ValueError
        If `support_y` holds the label ``-1``: the classifier would take
        those rows for unlabelled ones.
    """
    support_y = np.asarray(support_y)
    if unlabelled_rows(support_y).any():
        raise ValueError(
            minus_one_read_as_unlabelled(
                "its support rows would silently join the queries"
            )
        )
    unlabelled = np.full(len(queries), UNLABELLED)
    if support_y.dtype.kind not in "iuf":  # strings: -1 among them as an int
        support_y = support_y.astype(object)
        unlabelled = unlabelled.astype(object)
    estimator.fit(_rows(support_X, queries), np.concatenate([support_y, unlabelled]))
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


class TransductiveEpisode(ClassifierMixin, BaseEstimator):
    """`estimator` fitted on an episode's support set and queries at once.

    Parameters
    ----------
    estimator : estimator
        A ``FewShotClassifier`` with ``transductive`` set, or a ``Pipeline``
        ending in one.

    Attributes
    ----------
    support_X_ : array-like of shape (n_support, n_features)
    support_y_ : ndarray of shape (n_support,)
        The labelled rows given to :meth:`fit`, kept for :meth:`predict`.
    classes_ : ndarray of shape (n_classes,)
        The sorted labels of the support set (the classifier's ``classes_``).
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        """Keep the support set (no work is done until the queries come).

        Parameters
        ----------
        X : array-like of shape (n_support, n_features)
        y : array-like of shape (n_support,)

        Returns
        -------
        self
        """
        self.support_X_, self.support_y_ = X, np.asarray(y)
        self.classes_ = np.unique(self.support_y_)
        return self

    def predict(self, X):
        """Labels of the queries X, inferred jointly with the support set.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
            The estimator's ``transduction_`` of the rows of X.
        """
        check_is_fitted(self)
        classifier = fit_with_queries(
            clone(self.estimator), self.support_X_, self.support_y_, X
        )
        return classifier.transduction_[len(self.support_y_) :]

    def predict_proba(self, X):
        """Class probabilities of the queries X, inferred jointly with the
        support set: the softmax of the method's joint scores of them, whose
        largest is the label :meth:`predict` gives.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Probabilities of ``classes_``, each row summing to 1.
        """
        check_is_fitted(self)
        classifier = fit_with_queries(
            clone(self.estimator), self.support_X_, self.support_y_, X
        )
        scores = np.asarray(classifier.adapted_["unlabelled_scores"], dtype=np.float64)
        return softmax(scores, axis=1)


def _rows(first, second):
    """The rows of `first` then those of `second` (arrays or data frames)."""
    if hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat([first, second], ignore_index=True)
    return np.concatenate([np.asarray(first), np.asarray(second)])
