"""FewShotClassifier: adapts to a few labelled examples per class in ``fit``."""

from __future__ import annotations

from sklearn.base import ClassifierMixin

from ._base import MetaEstimator
from ._classifier_outputs import ClassifierOutputs
from ._online import record_support
from ._partial_fit import ClassifierPartialFit
from ._typing import ArrayLike, Self

__all__ = ["FewShotClassifier"]


class FewShotClassifier(
    ClassifierPartialFit, ClassifierOutputs, ClassifierMixin, MetaEstimator
):
    """Few-shot classifier: learns new classes from a few examples each.

    With ``pretrained=``, :meth:`fit` only adapts the meta-trained model to the
    support set ``(X, y)`` -- for Prototypical Networks it computes one prototype
    (mean embedding) per class, in milliseconds -- and :meth:`predict` labels
    queries by their nearest prototype. Any number of classes works, not only
    the ``n_way`` of meta-training. Without ``pretrained``, :meth:`fit`
    meta-trains on ``(X, y)`` first, then adapts to all of it: a complete
    classifier, usable anywhere scikit-learn expects one.

    No setting is silently ignored: a method setting the method does not take,
    or one unlike the pretrained model's, raises ``ValueError``; meta-training
    parameters set with ``pretrained=`` (so unused) make ``fit`` warn.
    Ctrl-C during meta-training ends :meth:`fit` after the current iteration
    with the model so far and a warning; with `checkpoint` (written then, as
    on SIGTERM, which then ends the process) the next :meth:`fit` resumes.

    .. versionadded:: 0.1

    Parameters
    ----------
    method : str, default=None
        Meta-learning method: a name from :func:`skmeta.available_methods`,
        which lists every registered method with a one-line summary. None means
        ``"protonet"`` (Prototypical Networks) when meta-training, and the
        method of `pretrained` otherwise; another method than the pretrained
        model's is refused.
    backbone : {"auto", "mlp", "conv4", "conv4_strided", "conv6", "resnet12"}, \
str or callable, default="auto"
        The network that embeds rows. ``"auto"`` is ``"conv4"`` when
        `input_shape` describes images ``(C, H, W)`` and ``"mlp"`` otherwise;
        ``"conv6"``: Chen et al.'s (2019) Conv6; ``"resnet12"``: the ResNet-12
        of MetaOptNet/FEAT/RFS (640-d, for 84x84 images); ``"torchvision:<name>"``:
        a torchvision classification model without its head (e.g.
        ``"torchvision:resnet18"``; needs torchvision). A ``torch.nn.Module``
        class or factory is called with `backbone_params` as keyword arguments
        and must map ``(batch, *input_shape)`` to ``(batch, dim)``.
    backbone_params : dict, default=None
        Keyword arguments of the backbone, e.g. ``{"hidden_sizes": (128,)}`` or
        ``{"dropout": 0.2}`` (after each hidden ReLU, while meta-training only;
        a float in [0, 1), default 0) for ``"mlp"``,
        ``{"hidden_channels": 32}`` or ``{"downsample": [...]}`` (one
        per block) for ``"conv4"``, ``{"channels": (64, 160, 320, 640)}`` for
        ``"resnet12"``, ``{"weights": "DEFAULT"}`` (a torchvision weights name
        or a local file) for ``"torchvision:<name>"``. Two keys are skmeta's
        own: ``"trainable_blocks"`` (an int ``k``: freeze all but the last ``k``
        blocks, see ``skmeta.meta.freezing``) and ``"input_normalization"`` (``"data"``,
        ``"imagenet"`` or ``{"mean": ..., "std": ...}`` per channel; by default
        ImageNet's for torchvision weights, the data's statistics otherwise).
    class_augmentation : {"rot90", "dihedral"}, default=None
        Class augmentation for square images during meta-training:
        ``"rot90"`` adds each class rotated by 90, 180 and 270 degrees as three
        new classes (Omniglot in Vinyals et al. 2016, Snell et al. 2017);
        ``"dihedral"`` adds the mirror images too. Adaptation is unchanged.
    augmentation : {"images", "affine", "elastic", "features"}, an object of \
:mod:`skmeta.augmentation`, callable or list, default=None
        Data augmentation of the rows meta-training draws, a batch at a time
        and seeded by `random_state`; validation, adaptation and
        :meth:`predict` never augment (see `test_time_shifts`). The strings
        are :mod:`skmeta.augmentation`'s classes with their defaults:
        ``"images"`` (crop, flip, colour jitter; torchvision), ``"affine"``
        (rotation, shift, zoom; no flip), ``"elastic"`` (strokes bent),
        ``"features"`` (noise, dropout); a list applies its items in turn. A
        callable is applied to each sample (shape `input_shape`, X's dtype),
        e.g. a ``torchvision.transforms.v2`` transform.
    input_shape : tuple of int, default=None
        Shape of one row, e.g. ``(1, 28, 28)`` for 28x28 grey images stored as
        784 columns. None means flat rows ``(n_features,)``, or the shape of
        `pretrained`; another shape than the pretrained model's is refused.
    distance : str, default=None
        How the methods that take it compare queries with prototypes:
        ``"euclidean"`` (squared Euclidean distance) or ``"cosine"`` (cosine
        similarity times a learnt temperature). None means the method's
        default, ``"euclidean"``, when meta-training, and the distance of
        `pretrained` otherwise: it is fixed by meta-training, so another one
        than the pretrained model's is refused.
    inner_lr, inner_steps : float, int, default=None
        Inner loop of the gradient-based methods: step size and number of SGD
        steps on the support set. None means the method's defaults when
        meta-training (``"maml"``, ``"fomaml"``, ``"metasgd"``: 0.4 and 2
        steps; ``"anil"``, ``"protomaml"``: 0.4 and 1; ``"reptile"``: 0.1 and
        5) and the meta-training values with `pretrained`. Set with
        `pretrained`, they change only the adaptation in :meth:`fit` -- what
        ``GridSearchCV`` over them tunes, with no meta-training. A pretrained
        ``"metasgd"`` model adapts with its meta-learnt step sizes and refuses
        `inner_lr`. The classification head starts with equal class rows (it
        serves any number of classes), so the first step adapts only the head:
        ``inner_steps=1`` makes ``"maml"`` adapt like ``"anil"`` (cheaper).
    first_order : bool, default=None
        Whether the meta-gradient of the gradient-based methods drops second
        derivatives. None means the method's own (``"fomaml"``: True). Fixed by
        meta-training: another value than the pretrained model's is refused.
    method_params : dict, default=None
        Settings of the method that have no parameter of their own, by name.
        The keys a method accepts are its ``settings`` in the registry
        (``skmeta.meta.algorithms.ALGORITHMS[method].settings``); others are
        refused, and so is a setting given both here and as a parameter. The
        rules above apply: with `pretrained`, adaptation settings (``inner_lr``,
        ``inner_steps``, ``inner_batch_size``...) apply; others must match.
        Values are checked as the parameters' own are (``"False"`` is no
        bool, ``True`` no int): a wrong one fails naming the setting.
    transductive : {"bdcspn", "tim", "alpha-tim", "laplacianshot", "ptmap"}, \
default=None
        Transductive inference: rows of y labelled ``-1`` are unlabelled (as
        in ``sklearn.semi_supervised``) and :meth:`fit` labels them together
        with the labelled rows, on the meta-model's embedding, into
        ``transduction_``; :meth:`predict` then scores rows with what the
        unlabelled rows taught. ``"bdcspn"``: prototype rectification (Liu et
        al. 2020); ``"tim"``, ``"alpha-tim"``: transductive information
        maximisation (Boudiaf et al. 2020; Veilleux et al. 2021, more robust
        to class-imbalanced unlabelled rows); ``"laplacianshot"``: Laplacian
        regularisation (Ziko et al. 2020); ``"ptmap"``: power transform and
        optimal transport (Hu et al. 2021; it assumes balanced classes).
        Each uses its paper's settings (alpha-TIM's loss weights excepted) and
        its own distance (not `distance`), for the methods of nearest prototype
        (``"protonet"``, ``"pretrain"``, ``"baseline++"``, ``"rfs"``) only.
        Without `pretrained`, meta-training uses the labelled rows only. With
        no unlabelled row, each falls back on its inductive form (e.g. TIM
        fine-tunes on the support rows), with a warning: GridSearchCV over
        episodes would score that. None: inductive, ``-1`` an ordinary label.
    transductive_params : dict, default=None
        Settings of the `transductive` method by name, such as ``{"lam": 0.5}``
        for ``"laplacianshot"``; the keys are its ``settings`` in
        ``skmeta.meta.transductive.TRANSDUCTIVE`` (others are refused), and
        their defaults are the paper's (alpha-TIM's loss weights excepted).
    n_way, k_shot, n_query : int, default=None
        Episode size in meta-training: classes per episode, labelled examples
        per class, and queries per class. None adapts to the data: up to
        20-way, 1-shot and 15 queries, fewer when the data have too few classes
        or samples per class (one shot serves more shots too: see the tuning
        guide). Values you set are honoured or refused with an error.
    within_group_episodes : float in [0, 1], default=0.0
        Share of the meta-training episodes whose `n_way` classes are drawn
        from one group of ``fit(X, y, groups=...)``, chosen uniformly among
        those with `n_way` classes of ``k_shot + n_query`` rows; the others
        (and validation episodes) are drawn among all classes: hard episodes,
        as Lake et al.'s within-alphabet runs. A rotated class stays in its
        group. Above 0 it needs `groups` and an episodic method, and
        `n_way=None` takes at most the largest group's number of classes.
    meta_batch_size : int, default=None
        Episodes per meta-update. None: 1 for classification; for regression,
        25 tasks when `groups` holds several (MAML's sine waves), else 1.
    max_iter : int, default=1000
        Number of meta-updates.
    learning_rate : float, default=None
        Initial learning rate of Adam, cosine-annealed to 0 over `max_iter`.
        None: the method's (``"protonet"``: 4e-3, the others: 1e-3).
    max_grad_norm : float, default=None
        Clip the meta-gradient to this total norm before each update (as
        ``torch.nn.utils.clip_grad_norm_``), a guard against the sudden
        collapses MAML-style meta-training can suffer. The history then records
        the mean norm before clipping (``grad_norm``). None: no clipping.
    normalize_y : False
        Regression only (:class:`FewShotRegressor`): refused unless False.
    early_stopping : bool, default=False
        Hold out a class-disjoint `validation_fraction` of the classes, evaluate
        on their episodes regularly, stop after `n_iter_no_change` evaluations
        without improvement and keep the best weights. Both are judged on the
        validation loss (``val_loss`` in ``history_``): the method's loss on
        the held-out classes' episodes, a log-loss for classification (mean
        squared error for regression), not ``val_accuracy``. The loss moves
        smoothly and values confident right answers, so it is less noisy on a
        fixed set of episodes; the weights kept may thus be of another
        iteration than the best ``val_accuracy`` (``best_iter_`` says which).
    calibrate : {"auto"} or bool, default="auto"
        After meta-training, fit a temperature on half of the episodes of the
        held-out classes (those `early_stopping` holds out, or, with
        calibrate=True and no early stopping, a `validation_fraction` of the
        classes held out for it): :meth:`predict_proba` then divides the class
        scores by it (Guo et al. 2017), unless it raised the expected
        calibration error on the other half (then 1, with a warning). The
        model records both errors (``meta_model_.config["calibration"]``) and
        the scores of known-class queries that `unknown_label` needs.
        ``"auto"``: with `early_stopping` only, so no class is held out just for it.
    validation_fraction : float, default=0.1
        Share of the classes held out for `early_stopping` and `calibrate`,
        at least 2 classes (a regressor: 1 task).
    n_iter_no_change : int, default=10
        Evaluations without improvement before stopping (every ``max_iter // 20``
        iterations, at most 100).
    n_jobs : int, default=None
        Worker threads for the meta-gradients of a meta-batch's tasks, on a
        CPU, for the gradient-based family. None: as many as torch has
        intra-op threads where each worker can run a thread of its own, else
        1 (not scikit-learn's 1); negative as joblib counts: -1 all of
        torch's intra-op threads, -2 all but one; 1: one task after the other
        in the calling thread (the lower-memory choice). A network with
        dropout (or another module that draws random numbers in training
        mode) always takes 1, so that the run repeats; a value above 1 then
        warns.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Arithmetic of meta-training. ``"bfloat16"`` and ``"float16"`` run the
        forward passes under ``torch.autocast`` (mixed precision, for GPUs with
        tensor cores; ``"float16"`` with loss scaling) and take the reference
        meta-gradient instead of the CPU speed paths. Weights, the saved model,
        adaptation and prediction stay float32.
    warm_start : bool, default=False
        Whether :meth:`fit` continues meta-training from the fitted
        ``meta_model_`` rather than from a new network, as scikit-learn's
        ``MLPClassifier`` does: `max_iter` more iterations from its weights and
        input scaling, a new cosine cycle and a new Adam; ``n_iter_`` and
        ``history_`` count on. The method and the network (`backbone`,
        `backbone_params`, `input_shape`) must stay those of ``meta_model_``.
        Each warm-started fit draws new episodes (from `random_state` and the
        iterations ``meta_model_`` has had), reproducibly; the classes held
        out for early stopping stay those of the first fit. Without a fitted
        model, :meth:`fit` meta-trains anew; :meth:`partial_fit` never
        meta-trains after its first call.
    checkpoint : str or path-like, default=None
        A file in which meta-training keeps its whole state (weights, Adam's
        state and schedule, random states, history, early-stopping state),
        written every `checkpoint_every` iterations and after the last,
        atomically (a temporary file, then a rename) in a format whose loading
        runs no code (safetensors + JSON). When the file exists, :meth:`fit`
        resumes from it: a run killed at any point ends with the same weights
        as one never stopped. A file of other settings or other data is
        refused with ``ValueError``; with ``random_state=None`` the resumed
        run keeps the seed the file records. The file stays after
        :meth:`fit` (a later fit of the same run resumes at its end and
        trains no more); delete it to meta-train afresh. One file holds one
        run: fits on other data or settings (the folds and candidates of a
        grid search) need paths of their own.
    checkpoint_every : int, default=None
        Iterations between two checkpoints. None: at each record of
        ``history_`` (every ``max_iter // 20`` iterations, at most 100).
    unknown_label : object, default=None
        Open-set prediction: :meth:`predict` returns this label (e.g. ``-1``
        or ``"unknown"``, not one of the classes) for a query whose best class
        score is below what `rejection_rate` of the known-class queries of the
        held-out classes reached in meta-training -- a query far from every
        class. Needs a model meta-trained with `calibrate`, adapted with its
        own settings and no test-time views. None: every query gets one of
        ``classes_``. :meth:`predict_proba`, :meth:`decision_function` same:
        wrappers predicting from them (OneVsRest, Bagging, CalibratedCV,
        Stacking, soft Voting) never return it; hard Voting fails.
    rejection_rate : float, default=None
        With `unknown_label`: the share of known-class queries to reject, in
        ``[0, 0.5]``, which sets the threshold (``unknown_threshold_``). None
        means 0.05. The threshold was measured on episodes of meta-training's
        ``k_shot``; with more shots the known queries score higher and fewer
        are rejected.
    replay_per_class : int, default=None
        Support rows kept per class for :meth:`partial_fit`, for the methods
        that adapt anew to all rows at each call (all but ``protonet``,
        ``pretrain``, ``baseline++`` and ``rfs``, which keep per-class sums and
        counts, no rows): a uniform sample of each class's rows (reservoir
        sampling, seeded by `random_state`). None keeps every row, so each
        call adapts exactly as :meth:`fit` on all rows so far (then the
        support rows are part of the fitted estimator and its pickle).
        Read at each call: lowered by ``set_params``, each class's kept rows
        are drawn down to it (still a uniform sample); raised, or None, the
        kept rows stay and later rows fill up (rows dropped before cannot
        come back: a warning says so). For :class:`MetaFeatureExtractor`, its
        ``partial_fit``'s replay buffer.
    test_time_shifts : sequence of int, default=None
        Test-time augmentation of image rows: a row's embedding is the mean
        over the row and its 8 shifts by each of these pixel counts (edges
        replicated), in :meth:`fit` and :meth:`predict`; ``(1, 2, 3)`` is 25
        views, 25 times the cost. For the methods that classify embeddings
        and every `transductive` method; applies with `pretrained` (and drops
        a calibrated temperature: see ``temperature_``).
    test_time_turns : {False, True, "rot90", "dihedral"}, default=False
        Test-time augmentation of square images: each image and its 3 quarter
        turns (True, ``"rot90"``), and its mirror image's 4 (``"dihedral"``),
        embedded side by side (each over `test_time_shifts`); Euclidean squared
        distances are the mean over them; 4 or 8 times the cost. For models
        meta-trained with ``class_augmentation="rot90"``; as `test_time_shifts`,
        but Relation Networks, FEAT, FRN, ``"cl2n"`` and ``full_context`` refuse it.
    pretrained : MetaModel or path, default=None
        Reuse a meta-trained model (or a file written by ``MetaModel.save``)
        instead of meta-training. The meta-training parameters (`backbone`,
        `backbone_params`, `class_augmentation`, `input_shape`, `n_way`,
        `k_shot`, `n_query`, `meta_batch_size`, `max_iter`, `learning_rate`,
        `max_grad_norm`, `normalize_y`, `early_stopping`, `calibrate`,
        `validation_fraction`, `n_iter_no_change`, `n_jobs`, `precision`,
        `warm_start`, `checkpoint`, `checkpoint_every`) are then unused, and
        :meth:`fit` warns with one ``UserWarning`` naming those not at their
        defaults. One exception: a
        file of a model with a custom backbone (a module class, factory or
        instance, or ``MetaModel.from_module``) holds only its weights, and
        `backbone` (the same class or factory, or a module of the same
        architecture) rebuilds it.
    device : str or torch.device, default="auto"
        Where torch runs: ``"auto"`` takes a GPU when there is one.
    random_state : int, RandomState instance or None, default=None
        Seeds meta-training's episodes and initialisation (torch's global
        generator forked); an int gives identical refits. Adaptation draws
        nothing at random, but for ``partial_fit``'s sample of each class's
        rows (``replay_per_class``), seeded by it too.
    verbose : int, default=0
        Show a progress bar of meta-training when positive.

    Attributes
    ----------
    meta_model_ : MetaModel
        The meta-trained model (``pretrained`` itself when given; never modified).
    classes_ : ndarray of shape (n_classes,)
        Class labels of the support set (with `transductive`, of its labelled
        rows), sorted; :meth:`partial_fit` adds new ones in their sorted place.
    class_count_ : ndarray of shape (n_classes,)
        Support rows seen per class (0 for a class that `classes=` of
        :meth:`partial_fit` declared and no row has shown yet).
    adapted_ : dict
        What adaptation produced (CPU tensors): ProtoNet's ``"prototypes"``
        ``(n_classes, dim)`` and the per-class ``"sums"`` and ``"counts"`` that
        :meth:`partial_fit` adds to; the gradient-based methods' adapted weights,
        head and statistics; with `transductive`, the method's state.
    transduction_ : ndarray of shape (n_samples,)
        With `transductive`: the label of every row of X in :meth:`fit`, as
        given for the labelled rows and inferred for the unlabelled ones.
        :meth:`predict` scores each row on its own, so it can differ from it
        where the method labels rows jointly (LaplacianShot, PT-MAP).
    temperature_ : float
        The divisor of the class scores in :meth:`predict_proba`: the model's
        calibrated temperature (see `calibrate`); 1.0 without it, when it was
        not applied (it raised the held-out calibration error), and where
        the scores are not those it was fitted to (`transductive`, test-time
        views, adaptation settings other than the model's; ``fit`` warns).
    unknown_threshold_ : float
        With `unknown_label`: the best class score below which :meth:`predict`
        returns `unknown_label`.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string column names.
    n_iter_ : int
        Meta-training iterations behind ``meta_model_``: those of this ``fit``
        (0 with ``pretrained``), with `warm_start` added to the previous fits'.
    best_iter_ : int or None
        With `early_stopping`: the iteration whose weights were kept (that of
        the lowest validation loss, counted as ``n_iter_``). None without early
        stopping and with ``pretrained``.
    history_ : list of dict
        The meta-training log of ``meta_model_``.

    See Also
    --------
    MetaFeatureExtractor : The embeddings alone, as a transformer.
    EpisodicSplit : Episodes as cross-validation folds.
    available_methods : The methods `method` accepts.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skmeta import FewShotClassifier
    >>> X, y = make_blobs(300, n_features=8, centers=12, random_state=0)
    >>> base = FewShotClassifier(max_iter=50, random_state=0).fit(X[y < 8], y[y < 8])
    >>> clf = FewShotClassifier(pretrained=base.meta_model_)
    >>> support = [list(y).index(c) for c in (8, 9, 10, 11)]  # one shot per class
    >>> clf.fit(X[support], y[support]).classes_
    array([ 8,  9, 10, 11])
    >>> bool(clf.score(X[y >= 8], y[y >= 8]) > 0.8)
    True
    """

    def fit(self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None) -> Self:
        """Adapt to the support set (X, y), meta-training first without `pretrained`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Support rows (images flattened; see `input_shape`).
        y : array-like of shape (n_samples,)
            Their labels: any labels scikit-learn accepts, strings included.
            With `transductive`, ``-1`` marks an unlabelled row.
        groups : array-like of shape (n_samples,), default=None
            The group of each row (e.g. its character's alphabet) for
            `within_group_episodes`, one per class; unused otherwise, with a
            warning. ``cross_validate`` and ``GridSearchCV`` pass them only by
            metadata routing (``clf.set_fit_request(groups=True)``).

        Returns
        -------
        self : FewShotClassifier
            The fitted classifier.
        """
        X, codes = self._fit_meta_model(X, y, groups)
        self._adapt(X, codes)
        self._set_open_set()
        record_support(self, X, codes)
        return self
