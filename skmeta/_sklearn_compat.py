"""The one place where skmeta imports private scikit-learn helpers."""

from sklearn.utils._param_validation import Interval, Options, StrOptions

__all__ = ["Interval", "Options", "StrOptions"]
