"""Which method settings an estimator gives, and how they apply: to
meta-train a method, or to adapt a pretrained model (a mixin of
``MetaEstimator``). The registry (``ALGORITHMS``) says which settings each
method takes and which of them a trained model takes anew."""

from __future__ import annotations

from ._parameters import TOP_LEVEL_SETTINGS
from .meta.algorithms import ALGORITHMS, make_algorithm
from .meta.model import MetaModel

__all__ = ["MethodSettings"]


class MethodSettings:
    """Method settings of an estimator (``distance``, ``inner_lr``, ...,
    ``method_params``): checked against the method, for meta-training or for
    adapting a pretrained model."""

    def _given_settings(self, method: str) -> dict:
        """The method settings set here (as parameters or in `method_params`);
        one that `method` does not take is refused."""
        given = {
            name: getattr(self, name)
            for name in TOP_LEVEL_SETTINGS
            if getattr(self, name) is not None
        }
        extra = dict(self.method_params or {})
        twice = sorted(given.keys() & extra.keys())
        if twice:
            raise ValueError(
                f"{', '.join(twice)} given both as a parameter and in method_params; "
                "give each setting once."
            )
        accepted = ALGORITHMS[method].settings
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes none"
        for name, value in given.items():
            if name not in accepted:
                others = [
                    m for m in self._task.methods() if name in ALGORITHMS[m].settings
                ]
                takers = (
                    f"methods that take {name}: {', '.join(others)}"
                    if others
                    else f"no {self._task.name} method takes {name}"
                )
                raise ValueError(
                    f"{name}={value!r} does not apply to method={method!r} ({takes}); "
                    f"{takers}. Leave {name}=None."
                )
        unknown = sorted(set(extra) - set(accepted))
        if unknown:
            raise ValueError(
                f"method_params has {', '.join(map(repr, unknown))}, which "
                f"method={method!r} does not take: {takes}. See "
                "skmeta.available_methods() for the methods."
            )
        return {**given, **extra}

    def _training_settings(self, method: str) -> dict:
        """Settings to meta-train `method` with (checked by building it)."""
        accepted = ALGORITHMS[method].settings
        settings = {
            **{k: v for k, v in self._task.default_settings.items() if k in accepted},
            **self._given_settings(method),
        }
        if self._task.regression:
            settings["regression"] = True
        make_algorithm(method, **settings)  # bad values fail before meta-training
        return settings

    def _adaptation_settings(self, model: MetaModel) -> tuple[dict, list[str]]:
        """Overrides of the pretrained model's method settings for adaptation,
        and the settings given that only meta-training would use.

        Settings fixed by meta-training must equal the model's, or are refused.
        """
        recorded = model.config["method_params"]
        method = ALGORITHMS[model.method]
        overrides, ignored = {}, []
        for name, value in self._given_settings(model.method).items():
            if name in method.adaptation_settings and not self._adapts:
                ignored.append(f"{name}={value!r}")
            elif name in method.adaptation_settings:
                overrides[name] = value
            elif name == "inner_lr":  # Meta-SGD: its learnt rates adapt
                raise ValueError(
                    f"inner_lr does not apply to a pretrained {model.method!r} model: "
                    "it adapts with its meta-learnt per-weight learning rates. "
                    "Leave inner_lr=None."
                )
            elif value != recorded.get(name):
                raise ValueError(
                    f"{name}={value!r} differs from the pretrained model's "
                    f"{recorded.get(name)!r}; it is fixed by meta-training. Leave "
                    f"{name}=None to use the model's, or meta-train anew."
                )
        return overrides, ignored
