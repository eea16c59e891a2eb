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
meets. It is fitted on half of those episodes and applied unless it raises
the expected calibration error on the other half (a ProtoNet's distances
are trained as logits, and a fitted ``T`` could make them worse). The same
episodes give the distribution of the best class score of a query of a
*known* class, from which an open-set threshold is read: a query
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
    "split_halves",
    "validation_outputs",
]

# Levels at which the known-query best scores are recorded: 0, 0.005, ..., 0.5.
# An open-set threshold rejects a share of known queries between 0 and 50%.
QUANTILE_LEVELS = np.round(np.arange(0, 0.5001, 0.005), 3)
_ECE_BINS = 15


def validation_outputs(
    algorithm, net, episodes
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    episode : Tensor of shape (n_queries_in_all_episodes,), int64
        The number of each query's episode, counting from 0.
    """
    logits, targets, episode = [], [], []
    number = -1
    for batch in episodes.batches(256):
        for task in range(batch.n_tasks):
            number += 1
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
            episode.append(torch.full((out.shape[0],), number, dtype=torch.int64))
    if not logits:
        raise ValueError("Every held-out episode diverged; nothing to calibrate on.")
    return torch.cat(logits), torch.cat(targets), torch.cat(episode)


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


def split_halves(n_rows: int, episode: torch.Tensor | None) -> torch.Tensor:
    """Which rows fit the temperature (True) and which check it (False).

    Parameters
    ----------
    n_rows : int
    episode : Tensor of shape (n_rows,), int64, or None
        Each row's episode: the episodes are split alternately, in order of
        their numbers, so that no episode's queries are on both sides. With
        None or a single episode, the rows are split alternately.

    Returns
    -------
    Tensor of shape (n_rows,), bool
        Every row True when there are fewer than 2 rows (nothing to split).
    """
    if n_rows < 2:
        return torch.ones(n_rows, dtype=torch.bool)
    if episode is not None and episode.unique().numel() > 1:
        rank = torch.unique(episode, return_inverse=True)[1]
        return rank % 2 == 0
    return torch.arange(n_rows) % 2 == 0


def _kept_at_1(logits: torch.Tensor, targets: torch.Tensor, temperature: float):
    """Why the fitted `temperature` cannot be used (logits and targets of the
    fitting half), or None."""
    if F.cross_entropy(logits, targets).item() <= FLAT_NLL:
        return (
            "The held-out classes' queries were all classified right with near "
            "certainty (negative log-likelihood below 1e-9), so no temperature "
            "can be fitted: any sharper or a little softer one fits as well. "
            "The temperature is left at 1. Hold out more, or harder, classes "
            "(validation_fraction) to calibrate."
        )
    if not 1.001e-4 < temperature < 0.999e4:  # the search's bound: no fit
        return (
            f"The calibration temperature reached its bound ({temperature:.4g}): "
            "the held-out scores are such that no temperature calibrates them "
            "(e.g. some episodes' adapted scores exploded); the temperature is "
            "left at 1. Check the inner loop's settings (inner_lr, inner_steps) "
            "or train longer."
        )
    return None


def calibration_record(
    logits: torch.Tensor, targets: torch.Tensor, episode: torch.Tensor | None = None
) -> dict:
    """What a model records about its held-out scores.

    Rows with a non-finite score (a diverged adaptation) are left out of
    everything. The temperature is fitted on half of the episodes
    (:func:`split_halves`) and checked on the other half: when it makes that
    half's expected calibration error worse than the raw softmax's, it is not
    applied (the temperature stays 1, with a warning), since a ProtoNet's
    distances are trained as logits and a temperature fitted to the
    likelihood can miscalibrate them (a ProtoNet on Omniglot: T = 1.069
    raised the ECE from 3.56% to 5.53% on the episodes it was fitted on).

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_way)
        Scores of held-out queries (:func:`validation_outputs`).
    targets : Tensor of shape (n_samples,), int64
    episode : Tensor of shape (n_samples,), int64, optional
        Each query's episode; without it the rows are split alternately.

    Returns
    -------
    dict
        ``temperature`` (the one to divide by: 1 or ``fitted_temperature``);
        ``fitted_temperature``, the one fitted on the fitting half;
        ``temperature_kept_at_1``, why it is 1 (None when fitted and used);
        ``ece_before`` / ``ece_after`` and ``nll_before`` / ``nll_after`` on
        the checking half (the softmax of the logits, then of
        ``logits / temperature``), and ``ece_fitted`` there at
        ``fitted_temperature``; ``n_fit_queries`` and ``n_check_queries``;
        ``accuracy``; ``known_score_levels`` and ``known_score_quantiles``
        (quantiles of each query's best score, for open-set thresholds);
        ``n_queries`` (with finite scores) and ``n_way``. Plain floats,
        strings and lists (JSON).
    """
    logits = logits.double()
    finite = torch.isfinite(logits).all(1)
    logits, targets = logits[finite], targets[finite]
    if logits.shape[0] == 0:
        raise ValueError("No finite held-out scores to calibrate on.")
    fitting = split_halves(len(targets), None if episode is None else episode[finite])
    checking = ~fitting if (~fitting).any() else fitting
    fitted = fit_temperature(logits[fitting], targets[fitting])
    reason = _kept_at_1(logits[fitting], targets[fitting], fitted)
    check, truth = logits[checking], targets[checking]
    ece_raw = expected_calibration_error(check.softmax(1), truth)
    ece_fitted = expected_calibration_error((check / fitted).softmax(1), truth)
    if reason is None and ece_fitted > ece_raw:
        reason = (
            f"The calibration temperature {fitted:.4g}, fitted on half of the "
            "held-out episodes, raised the expected calibration error on the "
            f"other half ({100 * ece_raw:.2f}% -> {100 * ece_fitted:.2f}%), so "
            "it is not applied: predict_proba uses temperature 1 (the raw "
            "softmax, the better calibrated there). config['calibration'] "
            "records both."
        )
    if reason is not None:
        warnings.warn(reason, UserWarning, stacklevel=user_stacklevel())
    temperature = 1.0 if reason is not None else fitted
    best = logits.max(1).values.numpy()
    return {
        "temperature": temperature,
        "fitted_temperature": fitted,
        "temperature_kept_at_1": reason,
        "ece_before": ece_raw,
        "ece_after": expected_calibration_error(
            (check / temperature).softmax(1), truth
        ),
        "ece_fitted": ece_fitted,
        "nll_before": F.cross_entropy(check, truth).item(),
        "nll_after": F.cross_entropy(check / temperature, truth).item(),
        "accuracy": (logits.argmax(1) == targets).double().mean().item(),
        "known_score_levels": QUANTILE_LEVELS.tolist(),
        "known_score_quantiles": np.quantile(best, QUANTILE_LEVELS).tolist(),
        "n_queries": int(targets.numel()),
        "n_fit_queries": int(fitting.sum()),
        "n_check_queries": int(checking.sum()),
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
    levels = np.asarray(record["known_score_levels"], dtype=np.float64)
    if not levels[0] <= rejection_rate <= levels[-1]:
        raise ValueError(
            f"rejection_rate must be within [{levels[0]}, {levels[-1]}], got "
            f"{rejection_rate!r}."
        )
    # float64: a file's integer beyond int64 made an array of Python objects
    quantiles = np.asarray(record["known_score_quantiles"], dtype=np.float64)
    return float(np.interp(rejection_rate, levels, quantiles))
