"""MetaFeatureExtractor: meta-learnt embeddings as a scikit-learn transformer."""

from __future__ import annotations

from sklearn import get_config
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._base import MetaEstimator
from ._checks import validated_rows

__all__ = ["MetaFeatureExtractor"]


class MetaFeatureExtractor(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, MetaEstimator
):
    """Embeddings that transfer to classes never seen in training.

    :meth:`fit` meta-trains a backbone on labelled rows (many classes, few
    examples each), or reuses ``pretrained``; :meth:`transform` maps rows to the
    backbone's embedding. Put it first in a ``Pipeline`` and any scikit-learn
    classifier, clusterer or projection works on the embeddings. Wrap a fitted
    extractor in ``sklearn.frozen.FrozenEstimator`` to reuse one meta-training
    across clones and cross-validation folds.

    .. versionadded:: 0.1

    Parameters
    ----------
    method, backbone, backbone_params, class_augmentation, augmentation : \
see FewShotClassifier
        The method (:func:`skmeta.available_methods`) and the network, as for
        :class:`FewShotClassifier`.
    input_shape, distance : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    inner_lr, inner_steps : see FewShotClassifier
        The inner loop of meta-training. An extractor does not adapt, so with
        `pretrained` they are unused and :meth:`fit` warns.
    first_order, method_params : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    transductive, transductive_params : see FewShotClassifier
        Transductive inference of a classifier. An extractor only embeds, so
        they are unused and :meth:`fit` warns when `transductive` is set; y
        keeps ``-1`` as an ordinary label.
    n_way, k_shot, n_query, meta_batch_size, max_iter : see FewShotClassifier
        Episodes and length of meta-training, as for :class:`FewShotClassifier`.
    learning_rate, max_grad_norm, early_stopping : see FewShotClassifier
        The meta-optimiser, as for :class:`FewShotClassifier`.
    validation_fraction, n_iter_no_change, n_jobs, precision : \
see FewShotClassifier
        Early stopping, worker threads and mixed precision, as for
        :class:`FewShotClassifier`.
    warm_start, checkpoint, checkpoint_every : see FewShotClassifier
        Continuing meta-training from the fitted model, and checkpoints to
        resume an interrupted run from, as for :class:`FewShotClassifier`.
    pretrained, device, random_state, verbose : see FewShotClassifier
        As for :class:`FewShotClassifier`; with `pretrained`, :meth:`fit` needs
        no labels.

    Attributes
    ----------
    meta_model_ : MetaModel
        The meta-trained model (``pretrained`` itself when given; never modified).
    n_iter_, history_, n_features_in_, feature_names_in_ : see FewShotClassifier
        Meta-training iterations behind ``meta_model_`` (0 with
        ``pretrained``; counted on with `warm_start`), the meta-training log,
        and the number and names of the features.

    See Also
    --------
    FewShotClassifier : Classify new classes from a few examples each.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skmeta import MetaFeatureExtractor
    >>> X, y = make_blobs(300, n_features=8, centers=12, random_state=0)
    >>> extractor = MetaFeatureExtractor(max_iter=50, random_state=0).fit(X, y)
    >>> extractor.transform(X[:5]).shape
    (5, 64)
    >>> extractor.get_feature_names_out()[:2]
    array(['metafeatureextractor0', 'metafeatureextractor1'], dtype=object)
    """

    def fit(self, X, y=None):
        """Meta-train on (X, y), or check and reuse `pretrained`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows (images flattened; see `input_shape`).
        y : array-like of shape (n_samples,), default=None
            Class labels; required unless `pretrained` is given.

        Returns
        -------
        self : MetaFeatureExtractor
            The fitted extractor.
        """
        self._fit_meta_model(X, y)
        return self

    def transform(self, X):
        """Embed rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to embed.

        Returns
        -------
        ndarray of shape (n_samples, embedding_dim)
            The embeddings, float32.
        """
        check_is_fitted(self)
        # NaN and infinity: MetaModel.transform's check is 5x faster here than
        # scikit-learn's, a few percent of an MLP's transform
        X = validated_rows(self, X)
        return self.meta_model_.transform(
            X,
            self._device(),
            check_finite=not get_config()["assume_finite"],
        )

    @property
    def _n_features_out(self) -> int:
        return self.meta_model_.embedding_dim

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.pretrained is None
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
