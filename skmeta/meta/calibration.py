"""Probabilities to trust, and "none of these": what meta-training measures on
held-out classes after its last step.

A few-shot classifier's scores are logits of distances or of an adapted head.
Only some methods train them as logits of the episodes they meet (ProtoNet
does); a pretrained backbone's prototype distances, or any method's scores on
other episode sizes, have an arbitrary scale. Temperature
scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks") divides
the logits by one scalar ``T`` fitted to minimise the negative log-likelihood of
held-out predictions; it changes no ranking, so accuracy stays the same.

Here the held-out predictions are those of the deployed ``adapt`` / ``predict``
on episodes of classes meta-training never saw (the class-disjoint validation
split), so ``T`` is fitted for new classes, which is what a few-shot model
meets. The same episodes give the distribution of the best class score of a
query of a *known* class, from which an open-set threshold is read: a query
whose best score falls below the ``r``-quantile is "none of these", and about a
share ``r`` of known-class queries are rejected with it.

No scikit-learn here; the estimators read :func:`calibration_record`'s result
from ``MetaModel.config["calibration"]``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from .algorithms import AdaptationDiverged, AdaptationWarning, task_targets
from .caller import user_stacklevel

__all__ = [
    "QUANTILE_LEVELS",
    "calibration_record",
    "expected_calibration_error",
    "fit_temperature",
    "known_score_threshold",
    "validation_outputs",
]

# Levels at which the known-query best scores are recorded: 0, 0.005, ..., 0.5.
# An open-set threshold rejects a share of known queries between 0 and 50%.
QUANTILE_LEVELS = np.round(np.arange(0, 0.5001, 0.005), 3)
_ECE_BINS = 15


def validation_outputs(algorithm, net, episodes) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of the deployed method on held-out episodes.

    Each episode is adapted to and predicted as ``FewShotClassifier.fit`` /
    ``predict`` would; an episode whose adaptation diverges is left out.

    Parameters
    ----------
    algorithm : Algorithm
        A classification method.
    net : MetaNet
        The meta-trained network, in eval mode.
    episodes : ValidationEpisodes
        Episodes of held-out classes (``skmeta.meta.batches``), or any object
        whose ``batches()`` yields ``TaskBatch`` objects.

    Returns
    -------
    logits : Tensor of shape (n_queries_in_all_episodes, n_way), float64
    targets : Tensor of shape (n_queries_in_all_episodes,), int64
    """
    logits, targets = [], []
    for batch in episodes.batches(256):
        for task in range(batch.n_tasks):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AdaptationWarning)
                    state = algorithm.adapt(
                        net,
                        batch.support_x[task],
                        task_targets(batch.support_y, task),
                        batch.n_way,
                    )
                with torch.no_grad():
                    out = algorithm.predict(net, state, batch.query_x[task])
            except AdaptationDiverged:
                continue
            logits.append(out.detach().double().cpu())
            targets.append(task_targets(batch.query_y, task).cpu())
    if not logits:
        raise ValueError("Every held-out episode diverged; nothing to calibrate on.")
    return torch.cat(logits), torch.cat(targets)


def expected_calibration_error(
    probabilities: torch.Tensor, targets: torch.Tensor, n_bins: int = _ECE_BINS
) -> float:
    """Expected calibration error of the top-class confidence.

    Confidences are cut into `n_bins` equal-width bins; the ECE is the mean,
    weighted by each bin's share of rows, of ``|accuracy - mean confidence|``
    in the bin (Naeini et al. 2015; Guo et al. 2017).

    Parameters
    ----------
    probabilities : Tensor of shape (n_samples, n_classes)
        Rows summing to 1.
    targets : Tensor of shape (n_samples,), int64
    n_bins : int, default=15

    Returns
    -------
    float
        Between 0 (calibrated) and 1.

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    >>> round(expected_calibration_error(p, torch.tensor([0, 1])), 3)
    0.4
    """
    confidence, predicted = probabilities.max(1)
    correct = (predicted == targets).double()
    bins = torch.clamp((confidence * n_bins).long(), max=n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            gap = correct[in_bin].mean() - confidence[in_bin].double().mean()
            ece += in_bin.double().mean().item() * abs(gap.item())
    return ece


# Held-out scores whose negative log-likelihood at temperature 1 is below this
# leave the temperature unidentified (the likelihood is flat at 0 in double
# precision): two runs gave 12.1 and 6.3, and rejected queries probabilities
# near 0.5 where the raw softmax said 1 (a reviewer).
FLAT_NLL = 1e-9


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The temperature ``T`` minimising the cross-entropy of ``logits / T``.

    The negative log-likelihood is convex in the inverse temperature
    ``1 / T`` (a log-sum-exp of a linear function of it, minus a linear one),
    so a golden-section search over ``log(1 / T)`` finds its minimum; it is
    bracketed in ``T`` from 1e-4 to 1e4.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes)
    targets : Tensor of shape (n_samples,), int64

    Returns
    -------
    float
        ``T > 0``; divide the logits by it.
    """
    logits = logits.double()
    finite = torch.isfinite(logits).all(1)
    logits, targets = logits[finite], targets[finite]
    if logits.shape[0] == 0:
        raise ValueError("No finite held-out scores to fit a temperature on.")

    def nll(log_beta: float) -> float:
        return F.cross_entropy(logits * math.exp(log_beta), targets).item()

    low, high = math.log(1e-4), math.log(1e4)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(80):  # the bracket shrinks to 1e-16 of its width
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(b)
    return math.exp(-(low + high) / 2)


def calibration_record(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """What a model records about its held-out scores.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_way)
        Scores of held-out queries (:func:`validation_outputs`).
    targets : Tensor of shape (n_samples,), int64

    Returns
    -------
    dict
        ``temperature``; ``ece_before`` / ``ece_after`` and ``nll_before`` /
        ``nll_after`` (the softmax of the logits, then of ``logits / T``);
        ``accuracy``; ``known_score_levels`` and ``known_score_quantiles``
        (quantiles of each query's best score, for open-set thresholds);
        ``n_queries`` and ``n_way``. Plain floats and lists (JSON).
    """
    temperature = fit_temperature(logits, targets)
    flat = F.cross_entropy(logits.double(), targets).item() <= FLAT_NLL
    if flat:  # every held-out query right with certainty: nothing to fit
        warnings.warn(
            "The held-out classes' queries were all classified right with near "
            "certainty (negative log-likelihood below 1e-9), so no temperature "
            "can be fitted: any sharper or a little softer one fits as well. "
            "The temperature is left at 1. Hold out more, or harder, classes "
            "(validation_fraction) to calibrate.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        temperature = 1.0
    elif not 1.001e-4 < temperature < 0.999e4:  # the search's bound: no fit
        warnings.warn(
            f"The calibration temperature reached its bound ({temperature:.4g}): "
            "the held-out scores are such that no temperature calibrates them "
            "(e.g. some episodes' adapted scores exploded); the temperature is "
            "left at 1. Check the inner loop's settings (inner_lr, inner_steps) "
            "or train longer.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        temperature = 1.0
    before = logits.double().softmax(1)
    after = (logits.double() / temperature).softmax(1)
    best = logits.double().max(1).values.numpy()
    best = best[np.isfinite(best)]  # as fit_temperature, no diverged episode
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(before, targets),
        "ece_after": expected_calibration_error(after, targets),
        "nll_before": F.cross_entropy(logits.double(), targets).item(),
        "nll_after": F.cross_entropy(logits.double() / temperature, targets).item(),
        "accuracy": (logits.argmax(1) == targets).double().mean().item(),
        "known_score_levels": QUANTILE_LEVELS.tolist(),
        "known_score_quantiles": np.quantile(best, QUANTILE_LEVELS).tolist(),
        "n_queries": int(targets.numel()),
        "n_way": int(logits.shape[1]),
    }


def known_score_threshold(record: dict, rejection_rate: float) -> float:
    """The best-class score below which a query is "none of these".

    Parameters
    ----------
    record : dict
        A model's ``config["calibration"]`` (:func:`calibration_record`).
    rejection_rate : float
        Share of known-class queries to reject, in ``[0, 0.5]``.

    Returns
    -------
    float
        The `rejection_rate`-quantile of the held-out known queries' best
        scores, interpolated between the recorded levels.
    """
    levels = np.asarray(record["known_score_levels"])
    if not levels[0] <= rejection_rate <= levels[-1]:
        raise ValueError(
            f"rejection_rate must be within [{levels[0]}, {levels[-1]}], got "
            f"{rejection_rate!r}."
        )
    return float(np.interp(rejection_rate, levels, record["known_score_quantiles"]))
