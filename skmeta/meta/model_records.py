"""What a MetaModel says about itself and how it is kept: its summary, its
recorded evaluations, its file (and model card), and plain copies of its
config and history. A mixin of :class:`~.model.MetaModel`, apart so that the
value object's module stays about the network and its use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import io

if TYPE_CHECKING:
    from .model import MetaModel

__all__ = ["ModelRecords"]


class ModelRecords:
    """Summary, evaluations, files: the record-keeping half of ``MetaModel``."""

    def summary(self) -> str:
        """A few lines for people: method, backbone, shapes, meta-training, and
        where the model came from (versions, date, data, classes)."""
        from .provenance import summary

        return summary(self)

    def with_evaluation(
        self,
        evaluation: Any,
        *,
        task: str | None = None,
        data: Mapping | None = None,
    ) -> MetaModel:
        """This model with one more entry in ``config["evaluations"]``.

        The weights are shared, not copied; the model itself is unchanged.

        Parameters
        ----------
        evaluation : EpisodicScore or mapping
            :func:`~skmeta.model_selection.episodic_score`'s result (then give
            `task`), or a mapping with ``task``, ``mean``, ``ci95``, ``n_episodes`` and
            optionally ``data`` (:func:`~skmeta.meta.model_card.evaluation_record`
            makes one).
        task : str, default=None
            What an :class:`~skmeta.model_selection.EpisodicScore` measured,
            e.g. ``"5-way 1-shot, 15 queries"``.
        data : mapping, default=None
            What it was measured on, with an EpisodicScore, e.g.
            ``{"source": "eval/", "n_classes": 20}``.

        Returns
        -------
        MetaModel

        Raises
        ------
        TypeError
            If `evaluation` is neither, an EpisodicScore comes without
            `task`, or a mapping with `task` or `data`.
        ValueError
            If the mapping lacks an entry or holds one of the wrong kind.
        """
        from .model_card import check_evaluation, evaluation_record

        if not isinstance(evaluation, Mapping):
            scores = getattr(evaluation, "scores", None)
            if scores is None or not hasattr(evaluation, "ci95"):
                raise TypeError(
                    "evaluation must be episodic_score's result or a mapping "
                    f"(evaluation_record's); got {type(evaluation).__name__}."
                )
            if task is None:
                raise TypeError(
                    "with_evaluation(episodic_score(...)) needs task=, what was "
                    "measured, e.g. task='5-way 1-shot, 15 queries'."
                )
            evaluation = evaluation_record(
                task, evaluation.mean, evaluation.ci95, len(scores), data
            )
        elif task is not None or data is not None:  # the mapping says them
            raise TypeError(
                "task= and data= go with episodic_score's result; a mapping "
                "holds its own 'task' and 'data'."
            )
        config = self.thawed_config()
        evaluations = config.get("evaluations", [])
        config["evaluations"] = [*evaluations, check_evaluation(evaluation)]
        return self._with_config(config)

    def with_feature_names(
        self, names: Sequence[object] | None, *, id_column: str | None = None
    ) -> MetaModel:
        """This model with ``config["provenance"]["feature_names"]`` set to
        `names` (list of str), as meta-training on a DataFrame records them;
        the weights are shared, the model itself is unchanged.

        Parameters
        ----------
        names : list of str or None
            The features' names, in the order of the rows' values; None
            leaves those recorded as they are.
        id_column : str, optional
            The table's column of the rows' names, not a feature, recorded as
            ``config["provenance"]["id_column"]`` (``skmeta train
            --id-column``), so that the other commands leave it out of the
            features without the flag.
        """
        config = self.thawed_config()
        made = dict(config.get("provenance") or {})
        if names is not None:
            made["feature_names"] = [str(n) for n in names]
        if id_column is not None:
            made["id_column"] = str(id_column)
        config["provenance"] = made
        return self._with_config(config)

    def _with_config(self, config: Mapping) -> MetaModel:
        """This model with `config`, its weights and history shared."""
        model: Any = self  # a MetaModel: this class is its mixin
        return type(model)(model._state, config, model._history, model._backbone)

    # -- files ------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], card: bool = False) -> None:
        """Write the model to a safetensors file (weights + JSON metadata).

        Loading it back never executes code from the file (:mod:`.io`).

        Parameters
        ----------
        path : str or path-like
        card : bool, default=False
            Also write its model card (Markdown: what it is, its
            meta-training, data, evaluations and calibration, how to use it)
            beside it, as `path` with the suffix ``.md``
            (:mod:`~skmeta.meta.model_card`).
        """
        path = Path(os.path.expanduser(path))
        io.save(self, path)
        if card:
            from .model_card import card_path, model_card

            card_path(path).write_text(
                model_card(self, Path(path).name), encoding="utf-8"
            )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backbone: Callable | None = None
    ) -> MetaModel:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
        backbone : callable or torch.nn.Module, optional
            Needed when the model was trained with a custom backbone: the same
            ``torch.nn.Module`` class or factory, or a module of the same
            architecture (the file holds only weights). Models made by
            :meth:`from_module` need it too.

        Returns
        -------
        MetaModel

        Raises
        ------
        FileNotFoundError
            If `path` does not exist.
        ValueError
            If the file is not a skmeta model (corrupt, or another format).
        """
        return io.load(path, backbone)

    def thawed_config(self) -> dict:
        """The config as plain (mutable) dicts and lists, a copy."""
        return io.thawed(self._config)

    def thawed_history(self) -> list:
        """The history as plain (mutable) dicts, a copy."""
        return io.thawed(self._history)
