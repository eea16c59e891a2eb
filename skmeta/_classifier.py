"""FewShotClassifier: adapts to a few labelled examples per class in ``fit``."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import META_PARAMETERS_DOC, MetaLearnerMixin, resolve_device

__all__ = ["FewShotClassifier"]


class FewShotClassifier(MetaLearnerMixin, ClassifierMixin, BaseEstimator):
    __doc__ = f"""Few-shot classifier: learns new classes from a few examples each.

    With ``pretrained=``, :meth:`fit` only adapts the meta-trained model to the
    support set ``(X, y)`` -- for Prototypical Networks it computes one prototype
    (mean embedding) per class, in milliseconds -- and :meth:`predict` labels
    queries by their nearest prototype. Any number of classes works, not only
    the ``n_way`` of meta-training. Without ``pretrained``, :meth:`fit`
    meta-trains on ``(X, y)`` first, then adapts to all of it: a complete
    classifier, usable anywhere scikit-learn expects one.

    .. versionadded:: 0.1

    Parameters
    ----------{META_PARAMETERS_DOC}

    Attributes
    ----------
    meta_model_ : MetaModel
        The meta-trained model (``pretrained`` itself when given; never modified).
    classes_ : ndarray of shape (n_classes,)
        Class labels of the support set.
    adapted_ : dict
        What adaptation produced (CPU tensors): ``{{"prototypes": (n_classes,
        dim)}}`` for ProtoNet; adapted weights, head and support statistics for
        the gradient-based methods.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has string column names.
    n_iter_ : int
        Meta-training iterations run by this ``fit`` (0 with ``pretrained``).
    history_ : list of dict
        The meta-training log of ``meta_model_``.

    See Also
    --------
    MetaFeatureExtractor : the embeddings alone, as a transformer.
    EpisodicSplit : episodes as cross-validation folds.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skmeta import FewShotClassifier
    >>> X, y = make_blobs(300, n_features=8, centers=12, random_state=0)
    >>> base = FewShotClassifier(max_iter=50, random_state=0).fit(X[y < 8], y[y < 8])
    >>> clf = FewShotClassifier(pretrained=base.meta_model_)
    >>> support = [list(y).index(c) for c in (8, 9, 10, 11)]  # one shot per class
    >>> clf.fit(X[support], y[support]).classes_
    array([ 8,  9, 10, 11])
    >>> bool(clf.score(X[y >= 8], y[y >= 8]) > 0.8)
    True
    """

    def __init__(
        self,
        *,
        method=None,
        backbone="auto",
        backbone_params=None,
        class_augmentation=None,
        input_shape=None,
        distance="euclidean",
        inner_lr=None,
        inner_steps=None,
        first_order=None,
        n_way=None,
        k_shot=None,
        n_query=None,
        meta_batch_size=1,
        max_iter=1000,
        learning_rate=1e-3,
        max_grad_norm=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        pretrained=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.method = method
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.class_augmentation = class_augmentation
        self.input_shape = input_shape
        self.distance = distance
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.pretrained = pretrained
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Adapt to the support set (X, y), meta-training first without `pretrained`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Support rows (images flattened; see `input_shape`).
        y : array-like of shape (n_samples,)
            Their labels: any labels scikit-learn accepts, strings included.

        Returns
        -------
        self : FewShotClassifier
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                "FewShotClassifier needs at least 2 classes in y; got 1 class "
                f"({self.classes_[0]!r})."
            )
        self.meta_model_ = self._get_meta_model(X, codes)
        self.history_ = [dict(record) for record in self.meta_model_.history]
        device = resolve_device(self.device)
        algorithm = self._algorithm()
        if algorithm.regression:
            raise ValueError(
                "The pretrained model was meta-trained for regression (by a "
                "FewShotRegressor); FewShotClassifier needs a classification model."
            )
        self.adapted_ = self.meta_model_.adapt(
            algorithm, X, codes, len(self.classes_), device
        )
        return self

    def _logits(self, X) -> np.ndarray:
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.meta_model_.predict(
            self._algorithm(), self.adapted_, X, resolve_device(self.device)
        )

    def decision_function(self, X):
        """Class scores of X (higher is more likely): minus squared distances to
        the prototypes for ProtoNet.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) with 2 classes
            (the score of ``classes_[1]`` minus that of ``classes_[0]``); float32
            like the network.
        """
        check_is_fitted(self)
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        """Class probabilities (softmax of the class scores).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        logits = self._logits(X)
        return softmax(logits, axis=1)

    def predict(self, X):
        """Label of the most likely class for each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[self._logits(X).argmax(axis=1)]
