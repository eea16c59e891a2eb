"""MetaFeatureExtractor: meta-learnt embeddings as a scikit-learn transformer."""

from __future__ import annotations

from typing import Any

from sklearn import get_config
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from ._base import MetaEstimator
from ._fast_checks import check_fitted, validated_rows
from ._ignored_features import warn_if_ignored_features_vary
from ._input_scale import warn_if_off_scale, warn_if_queries_off_scale
from ._online import extractor_partial_fit
from ._test_time import test_time_views
from ._typing import ArrayLike, Self
from .meta.views import embedding_blocks

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
    n_way, k_shot, n_query : see FewShotClassifier
        Episode size of meta-training, as for :class:`FewShotClassifier`.
    within_group_episodes : float in [0, 1], default=0.0
        Share of the meta-training episodes drawn within one group of
        ``fit(X, y, groups=...)``, as for :class:`FewShotClassifier`.
    meta_batch_size, max_iter : see FewShotClassifier
        Episodes per update and length of meta-training, as for
        :class:`FewShotClassifier`.
    learning_rate, max_grad_norm : see FewShotClassifier
        The meta-optimiser, as for :class:`FewShotClassifier`.
    normalize_y : False
        Regression only (:class:`FewShotRegressor`): refused unless False.
    early_stopping : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    calibrate, validation_fraction, n_iter_no_change, n_jobs, precision : \
see FewShotClassifier
        Calibration on held-out classes, early stopping, worker threads and
        mixed precision, as for :class:`FewShotClassifier`: the model it
        meta-trains then gives calibrated probabilities and open-set
        thresholds to the classifiers that reuse it.
    warm_start, checkpoint, checkpoint_every : see FewShotClassifier
        Continuing meta-training from the fitted model, and checkpoints to
        resume an interrupted run from, as for :class:`FewShotClassifier`
        (:meth:`partial_fit` always continues, and refuses `checkpoint`).
    unknown_label, rejection_rate : None
        Prediction only (:class:`FewShotClassifier`), refused unless None.
    replay_per_class : int, default=None
        Rows of each class the replay buffer of :meth:`partial_fit` keeps (a
        uniform sample of each class: reservoir sampling, seeded by
        `random_state`). None: 20, or ``k_shot + n_query`` when they are set
        and need more, so that every past class can still fill an episode.
        Read at each call, as :class:`FewShotClassifier`'s: a lower value
        draws each class's kept rows down; a higher one keeps them (rows
        dropped before cannot come back: a warning says so). Fewer than
        ``k_shot + n_query`` (1 each when None) is refused: the episodes are
        drawn from the buffer.
    test_time_shifts : sequence of int, default=None
        Test-time augmentation of image rows in :meth:`transform`: a row's
        embedding is the mean over the row and its 8 shifts by each of these
        pixel counts (edges replicated); ``(1, 2, 3)`` is 25 views, 25 times
        the cost. Any method; it may be changed after :meth:`fit`.
    test_time_turns : {False, True, "rot90", "dihedral"}, default=False
        In :meth:`transform`, the embeddings of each square image and its
        turns side by side (see :class:`FewShotClassifier`): ``4 *
        embedding_dim`` columns, 8 times with ``"dihedral"``. Any method; it
        may be changed after :meth:`fit`.
    pretrained, device, random_state, verbose : see FewShotClassifier
        As for :class:`FewShotClassifier`; with `pretrained`, :meth:`fit` needs
        no labels.

    Attributes
    ----------
    meta_model_ : MetaModel
        The meta-trained model (``pretrained`` itself when given; never modified).
    n_iter_, best_iter_, history_, n_features_in_, feature_names_in_ : \
see FewShotClassifier
        Meta-training iterations behind ``meta_model_`` (0 with
        ``pretrained``; counted on with `warm_start`), the iteration whose
        weights `early_stopping` kept (None without it), the meta-training
        log, and the number and names of the features.

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

    @property
    def _parameter_constraints(self) -> dict:
        # an extractor never predicts labels: nothing can be unknown
        return {
            **super()._parameter_constraints,
            "unknown_label": [None],
            "rejection_rate": [None],
        }

    def fit(
        self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None
    ) -> Self:
        """Meta-train on (X, y), or check and reuse `pretrained`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows (images flattened; see `input_shape`).
        y : array-like of shape (n_samples,), default=None
            Class labels; required unless `pretrained` is given.
        groups : array-like of shape (n_samples,), default=None
            The group of each row, for the episodes of
            `within_group_episodes` (see :class:`FewShotClassifier`).

        Returns
        -------
        self : MetaFeatureExtractor
            The fitted extractor.
        """
        X, _ = self._fit_meta_model(X, y, groups)
        if self.pretrained is not None:  # rows it will embed, on its scale?
            warn_if_off_scale(self, X)
        test_time_views(self, adapting=False)  # bad test-time views fail here
        self._replay = None  # partial_fit's buffer: fit keeps no rows
        return self

    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Meta-train on new classes without forgetting the earlier ones (FTML).

        Follows the meta-leader (Finn et al. 2019, "Online Meta-Learning"):
        each call adds (X, y) to a replay buffer of the classes seen so far
        (at most `replay_per_class` rows of each) and meta-trains `max_iter`
        iterations, from the current ``meta_model_``, on episodes drawn from
        all of the buffer's classes, with a new Adam and a new cosine cycle
        of the learning rate, and new episodes, drawn from `random_state`
        and the iterations so far (as `warm_start`). The network and the method
        settings are those of the model being continued; the episode sizes,
        `max_iter`, `learning_rate` and the other meta-training parameters
        are this estimator's, read at each call. :meth:`fit` keeps no rows
        (its data may be large): after it, this warns that the classes of
        :meth:`fit` are not replayed; start with this method to replay them.

        Without `pretrained`, the first call is :meth:`fit`. With it, the first
        call continues `pretrained` (which is not modified) on (X, y); the
        classes it was meta-trained on are not in the buffer, so use them in
        the first call if they must not be forgotten.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of new (or known) classes, images flattened.
        y : array-like of shape (n_samples,)
            Their class labels, of the same kind (numbers or strings) at every
            call. A label seen before is the same class.

        Returns
        -------
        self : MetaFeatureExtractor
            The extractor, its ``meta_model_`` continued.
        """
        return extractor_partial_fit(self, X, y)

    def transform(self, X: ArrayLike) -> Any:  # a DataFrame under set_output
        """Embed rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to embed.

        Returns
        -------
        ndarray of shape (n_samples, embedding_dim)
            The embeddings, float32 (4 or 8 times as many columns with
            `test_time_turns`).
            A DataFrame instead under ``set_output(transform="pandas")``
            (scikit-learn's wrapper).
        """
        check_fitted(self)
        # NaN and infinity: MetaModel.transform's check is 5x faster here than
        # scikit-learn's, a few percent of an MLP's transform
        X = validated_rows(self, X)
        warn_if_ignored_features_vary(self, X)
        warn_if_queries_off_scale(self, X)  # the first call's rows
        return self.meta_model_.transform(
            X,
            self._device(),
            check_finite=not get_config()["assume_finite"],
            views=test_time_views(self, adapting=False),
        )

    @property
    def _n_features_out(self) -> int:
        views = test_time_views(self, adapting=False)
        return embedding_blocks(views) * self.meta_model_.embedding_dim

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.pretrained is None
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
