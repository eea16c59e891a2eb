"""Online meta-learning: a bounded replay buffer of past classes' rows, the
network settings that continue a model, and incremental adaptation.

What the estimators' ``partial_fit`` builds on. Continued meta-training
follows the meta-leader (FTML, Finn, Rajeswaran, Kakade & Levine 2019,
"Online Meta-Learning"): each call meta-trains, from the current model, on
episodes drawn from every class seen so far, the past ones through the
buffer, so that the model is the one that fits all tasks so far rather than
the last ones only. No scikit-learn here.
"""

from __future__ import annotations

import numpy as np
import torch

from .algorithms import Algorithm, map_tensors
from .inference import deployed_network
from .views import viewed

__all__ = ["ReplayBuffer", "network_settings", "update_adaptation"]


class ReplayBuffer:
    """Rows of the classes seen so far, at most `per_class` rows of each.

    Each class keeps a uniform sample of all the rows of it that were added
    (reservoir sampling, Vitter's algorithm R, one reservoir per class), so a
    class seen long ago is as well represented as a new one and memory is
    bounded by ``per_class * n_classes`` rows. The buffer holds its own copies
    of the rows, in their dtype (``uint8`` images stay ``uint8``).

    Parameters
    ----------
    per_class : int or None
        Rows kept per class; None keeps every row.
    seed : int
        Seeds the reservoir's draws.

    Examples
    --------
    >>> import numpy as np
    >>> buffer = ReplayBuffer(per_class=2, seed=0)
    >>> buffer.add(np.arange(12.0).reshape(6, 2), np.array([0, 0, 0, 1, 1, 1]))
    >>> X, labels = buffer.rows()
    >>> X.shape, labels.tolist(), buffer.seen(1)
    ((4, 2), [0, 0, 1, 1], 3)
    """

    def __init__(self, per_class: int | None, seed: int) -> None:
        if per_class is not None and per_class < 1:
            raise ValueError(f"per_class must be None or >= 1, got {per_class}.")
        self.per_class = per_class
        self._rng = np.random.default_rng(seed)
        self._kept: dict = {}  # label -> ndarray (n_kept, n_features)
        self._seen: dict = {}  # label -> rows of that label ever added
        self._kind = None  # "strings" or "numbers", set by the first add

    def add(self, X: np.ndarray, labels: np.ndarray) -> None:
        """Add rows of any classes, new or already seen.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            Any labels NumPy can sort (the same kind at every call).
        """
        labels = np.asarray(labels)
        kind = "strings" if labels.dtype.kind in "OUS" else "numbers"
        if self._kind not in (None, kind):
            raise ValueError(
                f"labels are {kind}, but the buffer's classes are {self._kind}; "
                "use one kind of label."
            )
        self._kind = kind
        for label in np.unique(labels):
            key = label.item() if isinstance(label, np.generic) else label
            self._add_class(key, X[labels == label])

    def _add_class(self, label, rows: np.ndarray) -> None:
        kept = self._kept.get(label)
        seen = self._seen.get(label, 0)
        cap = rows.shape[0] + seen if self.per_class is None else self.per_class
        n_kept = 0 if kept is None else kept.shape[0]
        fill = min(cap - n_kept, rows.shape[0])  # free slots take rows as they come
        parts = [] if kept is None else [kept]
        kept = np.concatenate([*parts, rows[:fill]])
        # Then each later row (the t-th of its class, from 0) replaces a
        # random slot with probability cap / (t + 1): all rows equally likely.
        later = np.arange(seen + fill, seen + rows.shape[0])
        slots = self._rng.integers(0, later + 1) if later.size else later
        for row, slot in zip(range(fill, rows.shape[0]), slots, strict=True):
            if slot < cap:
                kept[slot] = rows[row]
        self._kept[label] = kept
        self._seen[label] = seen + rows.shape[0]

    def resize(self, per_class: int | None) -> bool:
        """Keep `per_class` rows of each class from now on.

        A lower cap draws each class's kept rows down to `per_class`, uniformly
        at random (with the buffer's generator), so each class still keeps a
        uniform sample of all its rows and later :meth:`add` calls go on
        sampling as if the cap had always been `per_class`. A higher cap, or
        None, keeps the rows as they are and fills up with rows added from now
        on: rows dropped before cannot come back, so a class that lost some
        no longer keeps a uniform sample (its later rows are favoured).

        Parameters
        ----------
        per_class : int or None
            Rows kept per class; None keeps every row from now on.

        Returns
        -------
        bool
            Whether the cap rose while some class had already lost rows
            (those rows cannot come back).

        Examples
        --------
        >>> import numpy as np
        >>> buffer = ReplayBuffer(per_class=4, seed=0)
        >>> buffer.add(np.arange(12.0).reshape(6, 2), np.array([0, 0, 0, 1, 1, 1]))
        >>> buffer.resize(2), len(buffer), buffer.resize(None)
        (False, 4, True)
        """
        if per_class is not None and per_class < 1:
            raise ValueError(f"per_class must be None or >= 1, got {per_class}.")
        old, self.per_class = self.per_class, per_class
        if per_class == old:
            return False
        if per_class is not None and (old is None or per_class < old):
            for label, kept in self._kept.items():
                if kept.shape[0] > per_class:
                    keep = self._rng.choice(kept.shape[0], per_class, replace=False)
                    self._kept[label] = kept[np.sort(keep)]
            return False
        return any(len(self._kept[label]) < self._seen[label] for label in self._kept)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept rows and their labels, class after class in sorted order.

        Returns
        -------
        X : ndarray of shape (n_kept, n_features)
        labels : ndarray of shape (n_kept,)
        """
        order = sorted(self._kept)
        X = np.concatenate([self._kept[label] for label in order])
        labels = np.concatenate(
            [np.full(len(self._kept[label]), label) for label in order]
        )
        return X, labels

    def seen(self, label) -> int:
        """How many rows of `label` were ever added (kept or not)."""
        return self._seen.get(label, 0)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._kept.values())


def network_settings(model) -> dict:
    """The :class:`~.train.TrainSettings` fields that rebuild `model`'s
    network, so that meta-training continues it (``meta_train(init=model)``).

    Parameters
    ----------
    model : MetaModel

    Returns
    -------
    dict
        ``method``, ``method_params``, ``backbone`` (the user's class, factory
        or template module for a custom one), ``backbone_params`` and
        ``input_shape``.
    """
    config = model.thawed_config()
    custom = config["backbone"] == "custom"
    return {
        "method": model.method,
        "method_params": config["method_params"],
        # the model keeps a custom backbone's factory or template for this
        "backbone": model._backbone if custom else config["backbone"],
        "backbone_params": config["backbone_params"] or None,
        "input_shape": tuple(model.input_shape),
    }


def update_adaptation(
    model,
    algorithm: Algorithm,
    state: dict,
    positions: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    device: torch.device,
    views=None,
) -> dict:
    """Add support rows to an adapted state with the method's ``update``
    (ProtoNet and the methods that adapt as it does); arrays in, CPU tensors
    out, as :meth:`MetaModel.adapt`.

    Parameters
    ----------
    model : MetaModel
    algorithm : Algorithm
        A method with an ``update`` (e.g. :class:`~.algorithms.ProtoNet`).
    state : dict
        The current adapted state.
    positions : ndarray of shape (n_old,), int
        The new class code of each class of `state`.
    X : ndarray of shape (n_new, n_features), float32
    y : ndarray of shape (n_new,), int
        Class codes ``0..n_classes-1`` of the new rows.
    n_classes : int
        Classes after the update.
    device : torch.device
    views : list of (int, int) or RowViews, optional
        The views of each row embedded (:func:`.views.viewed`), as the state
        was adapted with.

    Returns
    -------
    dict
        The state of all rows so far, as CPU tensors.
    """
    state = map_tensors(lambda t: t.to(device), state)
    net = deployed_network(model, algorithm, device)
    new = algorithm.update(
        viewed(net, model.input_shape, views),
        state,
        torch.as_tensor(np.asarray(positions, dtype=np.int64), device=device),
        torch.tensor(X, device=device),
        torch.tensor(y, device=device),
        n_classes,
        model.batch_size(device),
    )
    return map_tensors(lambda t: t.detach().cpu(), new)
