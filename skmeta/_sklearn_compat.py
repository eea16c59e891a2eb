"""The one place where skmeta imports private scikit-learn helpers."""

from sklearn.utils._param_validation import Interval, Options, StrOptions

from .meta.vision import PREFIX

__all__ = ["BackboneOptions", "Interval", "Options", "StrOptions"]


class BackboneOptions(StrOptions):
    """Backbone names: the given options, plus any ``"torchvision:<name>"``
    (whose model name is checked against torchvision when fitting).

    Parameters
    ----------
    options : set of str
        The built-in names (and ``"auto"``).
    """

    prefix = PREFIX

    def is_satisfied_by(self, val) -> bool:
        return super().is_satisfied_by(val) or (
            isinstance(val, str)
            and val.startswith(self.prefix)
            and len(val) > len(self.prefix)
        )

    def __str__(self) -> str:
        return f"{super().__str__()} or a str '{self.prefix}<model name>'"
