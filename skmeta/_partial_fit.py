"""``FewShotClassifier.partial_fit``: support rows, of known or new classes,
added without refitting (the work is ``_online.py``'s)."""

from __future__ import annotations

from sklearn.utils.metaestimators import available_if

from ._online import adds_rows_online, classifier_partial_fit
from ._typing import ArrayLike, Self

__all__ = ["ClassifierPartialFit"]


class ClassifierPartialFit:
    """Mixin of :class:`~skmeta.FewShotClassifier`: its ``partial_fit``."""

    @available_if(adds_rows_online)
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None
    ) -> Self:
        """Add support rows, of known or new classes, without refitting.

        The first call is :meth:`fit` (meta-training first without
        `pretrained`); each later call adapts only, from ``meta_model_``:

        - ProtoNet (and ``"pretrain"``) embeds only the new rows and adds them
          to per-class sums and counts (in ``adapted_``), so the prototypes
          equal those of :meth:`fit` on all rows so far;
        - the other methods adapt anew, from the meta-learnt start, on the
          support rows kept so far (all of them, or `replay_per_class` of each
          class): the adaptation :meth:`fit` on those rows gives, in bounded
          memory (large support sets are adapted in chunks).

        Later calls may bring new classes, unlike scikit-learn's: ``classes_``
        grows, sorted as :meth:`fit` on the same rows would sort it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New support rows (images flattened; see `input_shape`).
        y : array-like of shape (n_samples,)
            Their labels, of the same kind (numbers or strings) at every call.
        classes : array-like of shape (n_classes,), default=None
            Labels to know from now on, as scikit-learn's ``partial_fit``
            takes them at the first call; they must include every label of
            `y`. A class without rows yet is never predicted (score
            ``-inf``, probability 0) until rows of it arrive. None: the labels
            of `y`. Never required: later calls may add classes. With
            `pretrained`, it lets a first call bring rows of one class only
            (otherwise refused: a classifier needs 2 classes).

        Returns
        -------
        self : FewShotClassifier
            The classifier, adapted to every row so far.
        """
        return classifier_partial_fit(self, X, y, classes)
