"""The one place where skmeta imports private scikit-learn helpers."""

from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Interval", "StrOptions"]
