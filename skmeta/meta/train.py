"""Meta-training: rows and settings in, an immutable MetaModel out.

Kept apart from the methods (which only compute losses) and from the estimators
(which only validate input and hold fitted state). No scikit-learn here.
:func:`meta_train` assembles a run: the rows read by index (:mod:`.rows`), the
episode streams (:mod:`.batches`), the network and its input scaling, the
built-in callbacks; the loop itself is :class:`~.loop.MetaTrainer`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .accel.malloc import malloc_tuning
from .algorithms import make_algorithm
from .algorithms.feature_norm import BASE_MEAN, base_class_mean
from .augment import make_augmentation
from .augment_checks import check_flips_with_class_augmentation
from .backbones import resolve_backbone
from .batches import (
    labelled_batches,
    split_classes,
    task_batches,
    training_index,
    validation_batch,
)
from .calibration import calibration_record, validation_outputs
from .callbacks import Callback
from .checkpoint import Checkpoint
from .checkpoint_lock import released
from .distributed import current_ranks
from .fingerprint import run_fingerprint
from .loop import MetaTrainer, meta_gradient
from .model import MetaModel
from .net import float32_default
from .optim import CosineAdam
from .precision import warn_if_inner_loop_unscaled, warn_if_slow
from .provenance import describe
from .rows import CLASS_AUGMENTATIONS, Rows, input_statistics
from .run_guard import one_run_at_a_time
from .seeding import seeded_default_generator
from .settings import TrainSettings
from .target_scaling import fit_target_scaling, scale_targets
from .train_setup import (
    as_rows,
    build_net,
    built_in_callbacks,
    pixel_sample,
    run_config,
)
from .warm_start import iterations_behind, start_from
from .within_group import check_group_sizes, check_within_group, class_groups

__all__ = ["MetaTrainer", "TrainSettings", "meta_gradient", "meta_train"]

# MetaTrainer and meta_gradient live in .loop; importable from here as well.


def meta_train(
    X: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    targets: np.ndarray | None = None,
    callbacks: Sequence[Callback] = (),
    init: MetaModel | None = None,
    description: Mapping | None = None,
    groups: np.ndarray | None = None,
) -> MetaModel:
    """Meta-train a network on rows `X` with class codes `y`.

    With ``settings.checkpoint``, the state of the run is written to that file
    every ``settings.checkpoint_every`` iterations and after the last
    (:class:`~.checkpoint.Checkpoint`); when the file exists, the run resumes
    from it, to the same final weights as an uninterrupted run, or is refused
    if the file is of other settings or data (X's values included). A folder
    that cannot be written is refused before training; a write that fails
    later warns, and training goes on. Ctrl-C ends the run after the current
    iteration (a second one at once) with the model so far and a warning. With
    a checkpoint, SIGTERM (SIGHUP, SIGUSR1, SIGUSR2) ends it after the current
    iteration, the checkpoint written, and is then passed on
    (:mod:`.termination`: by default ``SystemExit(128 + signum)``).

    A distillation method (a ``generations`` setting: RFS) trains one network
    per generation, each a loop of ``max_iter`` iterations (records tagged
    with their ``generation``) taught by the frozen previous one. A prototype
    method stores the mean embedding of up to 4,096 training rows with the
    model (``extra.base_mean``), for ``feature_norm="cl2n"``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Any real or integer dtype (``uint8`` images stay ``uint8``), in memory
        or a ``numpy.memmap``: it is read one batch of rows at a time and never
        copied whole.
    y : ndarray of shape (n_samples,), int
        Class codes (any integers); for regression, the task (group) of each row.
    settings : TrainSettings
    targets : ndarray of shape (n_samples,), optional
        Regression targets; episodes are then one task each (``n_way=1``) and the
        method must be a regression one (``method_params["regression"]``).
    callbacks : sequence of Callback, optional
        Run after the built-in ones (history, clipping, early stopping,
        progress bar), before the checkpoint.
    init : MetaModel, optional
        A warm start: meta-train on from this model's weights and input
        scaling (same method and network) for ``settings.max_iter`` more
        iterations, with a new Adam and a new cosine cycle of the learning
        rate. Its episodes (and augmentation, dropout: torch's draws) come
        from ``SeedSequence(settings.seed, spawn_key=(n,))``, `n` the
        iterations behind `init`, so that warm starts in a row each draw new
        ones; the class split and validation episodes stay the seed's, those
        of a fit without `init`.
    description : mapping, optional
        Recorded in ``config["provenance"]`` beside the versions, the date and
        the data's shape (:func:`~.provenance.describe`), e.g.
        ``{"class_names": [...], "feature_names": [...]}``.
    groups : ndarray of shape (n_samples,), int, optional
        Group code of each row (e.g. the alphabet of an Omniglot character),
        one per class; needed when ``settings.within_group_episodes > 0``, the
        share of training episodes whose classes are drawn from one group
        (:func:`~.episodes.sample_group_episodes`). Validation episodes stay
        random.

    Notes
    -----
    Started by torchrun on several processes (or inside a process group the
    caller initialised), every process must call this with the same data and
    settings: each takes a share of each meta-batch, the meta-gradients are
    all-reduced, and every process returns the same model (rank 0's seed is
    used; only rank 0 writes the checkpoint and shows progress). See
    :mod:`.distributed`.

    Returns
    -------
    MetaModel
        Its ``history`` holds one record per ``settings.eval_interval``
        iterations (after those of `init`, counting on from them);
        ``config["training"]`` the settings, ``n_iter`` and ``best_iter``
        (counting on from `init`'s too), ``interrupted`` (with
        ``interrupted_by``: ``"KeyboardInterrupt"`` or the signal's name),
        ``resumed_from`` (the iteration a checkpoint resumed at, counted
        alike, or None) and ``elapsed``, this call's seconds from the loop's
        start; a record's ``elapsed`` counts over every call of a resumed run
        (not the time between, nor iterations lost after a checkpoint).
    """
    device = torch.device(settings.device)
    ranks = current_ranks(device)
    with one_run_at_a_time(ranks):
        return _seeded_meta_train(
            X, y, settings, device, ranks, targets, callbacks, init, description, groups
        )


def _seeded_meta_train(
    X, y, settings, device, ranks, targets, callbacks, init, description, groups
) -> MetaModel:
    if ranks is not None:
        if device.type == "cuda" and device.index is None:
            device = ranks.local_gpu()
        ranks = dataclasses.replace(ranks, device=device)
        settings = dataclasses.replace(
            settings, seed=ranks.broadcast_int(settings.seed)
        )
    rng = np.random.default_rng(settings.seed)
    devices = []
    if device.type == "cuda":  # "cuda" alone is the current device, not cuda:0
        index = device.index
        devices = [torch.cuda.current_device() if index is None else index]
    seed = int(rng.integers(2**63 - 1))
    draws, before = rng, 0 if init is None else iterations_behind(init)
    if before:  # a warm start: new episodes and torch draws, the same split
        draws = np.random.default_rng(
            np.random.SeedSequence(settings.seed, spawn_key=(before,))
        )
        seed = int(draws.integers(2**63 - 1))
    with seeded_default_generator(seed, devices), malloc_tuning(), float32_default():
        return _meta_train(
            X,
            y,
            settings,
            device,
            (rng, draws),
            targets,
            callbacks,
            init,
            description,
            ranks,
            groups,
        )


def _meta_train(
    X, y, settings, device, rngs, targets, callbacks, init, description, ranks, groups
) -> MetaModel:
    rng, draws = rngs  # the seed's (class split, validation); the episodes'
    algorithm = make_algorithm(settings.method, **settings.method_params)
    if (targets is not None) != algorithm.regression:
        raise ValueError(
            f"method={settings.method!r} with regression={algorithm.regression} "
            f"does not fit {'regression' if targets is not None else 'class'} data."
        )
    if settings.class_augmentation not in CLASS_AUGMENTATIONS:
        raise ValueError(
            f"class_augmentation={settings.class_augmentation!r} is unknown; use "
            "None, 'rot90' or 'dihedral'."
        )
    check_flips_with_class_augmentation(
        settings.augmentation, settings.class_augmentation
    )
    check_within_group(settings, algorithm, groups, len(y), targets is not None)
    backbone = resolve_backbone(settings.backbone, settings.input_shape)
    X = as_rows(X)
    scaling = fit_target_scaling(targets, settings.normalize_y, init)
    T_all = (
        None
        if targets is None
        else torch.tensor(
            scale_targets(scaling, targets), dtype=torch.float32, device=device
        )
    )
    y = np.asarray(y)
    parts, fingerprint = (0, 1), None
    if ranks is not None or settings.checkpoint is not None:
        fingerprint = run_fingerprint(settings, X, y, targets, init, groups)
    if ranks is not None:
        ranks.check_same(fingerprint)
        ranks.check_meta_batch(settings.meta_batch_size)
        parts = (ranks.rank, ranks.size)
    rotations = CLASS_AUGMENTATIONS[settings.class_augmentation]
    rows = Rows(X, settings.input_shape, device, rotations)
    if settings.calibrate and targets is not None:
        raise ValueError("calibrate=True applies to classification only.")
    generations = getattr(algorithm, "generations", None)
    if generations and (init is not None or settings.checkpoint is not None):
        raise ValueError(
            f"method={settings.method!r} with generations={generations} trains "
            "a network per generation, which warm_start and checkpoint do not "
            "follow; set generations=0, or turn warm_start and checkpoint off."
        )
    val_batch = None
    if settings.early_stopping or settings.calibrate:
        least = 1 if targets is not None else 2  # a task, or a 2-way episode
        train_rows, val_rows = split_classes(
            y, settings.validation_fraction, rng, least
        )
        val_batch = validation_batch(rows, val_rows, y[val_rows], settings, rng, T_all)
    else:
        train_rows = np.arange(y.size)
    classes, codes = np.unique(y[train_rows], return_inverse=True)
    index, virtual_rows, virtual_codes = training_index(
        train_rows, codes, X.shape[0], rotations
    )
    n_classes = classes.size * rotations
    by_group = None
    if settings.within_group_episodes > 0:
        by_group = class_groups(np.asarray(groups)[train_rows], codes, rotations)
        check_group_sizes(index, by_group, settings)
    pixels = pixel_sample(rows)
    net = build_net(
        settings,
        algorithm,
        backbone,
        lambda: input_statistics(
            rows,
            len(settings.input_shape) != 3,
            None if train_rows.size == y.size else train_rows,
            rng,
        ),
        pixels,
        n_classes,
        device,
    )
    offset = 0 if init is None else start_from(net, init, settings)
    rows.augment = make_augmentation(
        settings.augmentation,
        settings.input_shape,
        net.input_mean.cpu(),
        net.input_scale.cpu(),
    )

    if algorithm.episodic:
        batches = task_batches(
            rows,
            index,
            settings,
            draws,
            settings.n_way,
            settings.n_query,
            settings.meta_batch_size,
            T_all,
            parts=parts,
            groups=by_group,
            within_group=settings.within_group_episodes,
        )
    else:
        rows_per_step = (
            settings.n_way
            * (settings.k_shot + settings.n_query)
            * settings.meta_batch_size
        )
        batches = labelled_batches(
            rows, virtual_rows, virtual_codes, rows_per_step, draws, parts
        )
    if settings.checkpoint is not None:
        callbacks = [
            *callbacks,
            Checkpoint(
                settings.checkpoint,
                settings.checkpoint_every,
                fingerprint,
                writes=ranks is None or ranks.is_main,
                ranks=ranks,
            ),
        ]
    warn_if_slow(settings.precision, device)  # once, not once per generation
    warn_if_inner_loop_unscaled(settings.precision, algorithm)
    start = time.perf_counter()
    history, done, step_algorithm = [], 0, algorithm
    for generation in range(1 + (generations or 0)):
        if generation:  # a fresh student; the previous network is its teacher
            teacher = net
            net = build_net(
                settings,
                algorithm,
                backbone,
                # an ignored feature's deviation 0: the student ignores it too
                lambda t=teacher: (t.input_mean, t.input_scale * t.input_keep),
                pixels,
                n_classes,
                device,
            )
            step_algorithm = algorithm.with_teacher(teacher)
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimizer = CosineAdam(trainable, settings.learning_rate, settings.max_iter)
        built_in = built_in_callbacks(
            settings, val_batch, ranks, generation, generations
        )
        loop = MetaTrainer(
            net,
            step_algorithm,
            optimizer,
            batches,
            settings,
            [*built_in, *callbacks],
            ranks,
        )
        with released(loop.callbacks):  # the checkpoint's lock, on errors too
            loop.run()
        tag = {} if generations is None else {"generation": generation}
        history += [
            {**r, **tag, "iter": r["iter"] + offset + done} for r in loop.history
        ]
        best_iter, done = done + loop.best_iter, done + loop.n_iter
        if loop.interrupted:
            break
    if BASE_MEAN in net.extra:  # the real training rows; a generator of its own
        sample = np.random.default_rng([settings.seed, 1])
        mean = base_class_mean(
            net, rows, train_rows, sample, verbose=settings.verbose > 0
        )
        net.extra[BASE_MEAN].copy_(mean)
    made = describe(X, description, settings.method)  # a plugin's: its distribution
    config = run_config(settings, algorithm, backbone, net, n_classes, made)
    if scaling is not None:  # adaptation standardises, predictions scale back
        config["target_scaling"] = scaling
    if settings.calibrate:  # on the held-out classes, with the final weights
        net.eval()
        config["calibration"] = calibration_record(
            *validation_outputs(algorithm, net, val_batch)
        )
    checkpoints = [c for c in loop.callbacks if isinstance(c, Checkpoint)]
    resumed = checkpoints[0].resumed_from if checkpoints else None
    config["training"].update(
        n_iter=offset + done,
        n_iter_before=offset,
        best_iter=offset + best_iter,
        interrupted=loop.interrupted,
        **({"interrupted_by": loop.interrupted_by} if loop.interrupted else {}),
        elapsed=time.perf_counter() - start,
        resumed_from=None if resumed is None else offset + resumed,
        world_size=1 if ranks is None else ranks.size,
        **loop.thread_counts,  # torch_threads (and task_workers)
    )
    return MetaModel(
        net.state_dict(),
        config,
        [*(() if init is None else init.thawed_history()), *history],
        backbone=None if isinstance(backbone, str) else backbone,
    )
