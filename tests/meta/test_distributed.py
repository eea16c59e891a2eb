"""Distributed meta-training (skmeta.meta.distributed) on 2 local processes
(gloo): the same meta-gradients, the same weights after a few steps, and the
same history, as one process taking the whole meta-batch; ranks agree; the
estimator and ``skmeta train`` under torchrun."""

import datetime
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from maml_helpers import classification_batch
from signal_helpers import default_signals, wait_for
from torch import nn

import skmeta
from skmeta.meta import run_guard
from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.augment import FeatureAugmentation, make_augmentation
from skmeta.meta.batches import labelled_batches, share_of, task_batches
from skmeta.meta.callbacks import Callback
from skmeta.meta.checkpoint_lock import CheckpointLock
from skmeta.meta.distributed import Ranks, current_ranks, is_main_process
from skmeta.meta.episodes import ClassIndex
from skmeta.meta.io import load_checkpoint
from skmeta.meta.loop import meta_gradient
from skmeta.meta.model import MetaModel
from skmeta.meta.net import MetaNet
from skmeta.meta.norm import use_task_norm
from skmeta.meta.rows import Rows
from skmeta.meta.termination import TerminationGuard
from skmeta.meta.train import TrainSettings, meta_train

ROOT = str(Path(skmeta.__file__).resolve().parents[1])
WORLD = 2
N_TASKS = 4

RUNS = {  # name -> meta_train settings changes; MLPs have no batch norm
    "maml": dict(method="maml", method_params={"inner_steps": 2}),
    "protonet": dict(method="protonet", early_stopping=True, n_iter_no_change=2),
    "pretrain": dict(method="pretrain"),
    "regression": dict(  # per-task targets: 2-D labels, split with the tasks
        method="maml",
        method_params={"regression": True, "inner_lr": 0.01, "inner_steps": 2},
        n_way=1,
        k_shot=4,
        n_query=4,
        early_stopping=True,
    ),
}

# Parameters whose meta-gradient is 0 but for rounding, which Adam scales up to
# steps of learning_rate: a run with n_jobs=2 differs from n_jobs=1 as much.
# MAML's shared head (moving every class row at once changes no softmax);
# ProtoNet's last bias (moving every embedding at once changes no distance).
ROUNDING_DRIVEN = {
    "maml": ("extra.head_weight", "extra.head_bias"),
    "protonet": ("backbone.layers.2.bias",),
}


def _settings(**changes):
    base = dict(
        n_way=3,
        k_shot=2,
        n_query=3,
        input_shape=(6,),
        backbone_params={"hidden_sizes": (16,), "out_features": 8},
        meta_batch_size=N_TASKS,
        max_iter=6,
        learning_rate=0.01,
        n_val_episodes=5,
        validation_fraction=0.3,
        seed=4,
    )
    return TrainSettings(**{**base, **changes})


def _bn_mlp():
    """An MLP with a batch norm on batch statistics (ProtoNet's, not per task)."""
    return nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8)
    )


def _data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 12)
    X = (rng.normal(size=(y.size, 6)) + y[:, None] % 3).astype(np.float32)
    return X, y


def _targets(name):
    """Regression targets (a line per task, `y` the task), or None."""
    if name != "regression":
        return None
    X, y = _data()
    return (X[:, 0] * (1 + y % 4) - y % 3).astype(np.float32)


def _net(method, seed=0):
    """A float64 MLP; MAML's with a (task) batch norm, per task in training."""
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)]
    if method == "maml":
        layers.insert(1, nn.BatchNorm1d(7))
    backbone = nn.Sequential(*layers)
    algorithm = make_algorithm(method)
    if algorithm.task_norm:
        use_task_norm(backbone)
    net = MetaNet(backbone, (5,), per_feature_scaling=True)
    for name, value in algorithm.meta_parameters(net, 3, 3).items():
        net.extra[name] = nn.Parameter(value + 0.3 * torch.randn_like(value))
    return algorithm, net.double()


def _gradients(method, share=slice(None)):
    algorithm, net = _net(method)
    batch = classification_batch(N_TASKS, 5).tasks(share)
    loss, metrics = meta_gradient(algorithm, net, batch)
    return net, batch, loss, metrics


class Stop(Callback):
    """Ctrl-C after the update of iteration 3, on every rank."""

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 3:
            raise KeyboardInterrupt


class SigtermOnRank1(Callback):
    """SIGTERM to rank 1 alone, during iteration 3."""

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 3 and loop.ranks.rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)


class SigintOnRank1(Callback):
    """Ctrl-C (SIGINT, to Python's own handler) on rank 1 alone, in iteration 3."""

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 3 and loop.ranks.rank == 1:
            signal.raise_signal(signal.SIGINT)


class HoldFirstStep(Callback):
    """Holds meta-training in its first step until `release` is set, after
    telling `started`."""

    def __init__(self, started, release):
        self.started, self.release = started, release

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 1:
            self.started.set()
            self.release.wait(60)


def _two_threads(X, y):
    """A second meta_train in another thread while one is in its first step:
    (what the first returned, what the second raised)."""
    started, release = threading.Event(), threading.Event()
    result = {}

    def first():
        result["first"] = meta_train(
            X, y, _settings(), callbacks=[HoldFirstStep(started, release)]
        )

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(60)
    try:
        meta_train(X, y, _settings())
    except RuntimeError as exc:
        result["second"] = str(exc)
    finally:
        release.set()
        thread.join(60)
    return type(result.get("first")).__name__, result.get("second")


def _worker(rank, folder):
    """Rank `rank` of a gloo run: meta-gradients, meta_train runs, and the
    errors for what is refused; results saved in `folder`."""
    os.environ.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not ignored
    dist.init_process_group(
        "gloo",
        init_method=f"file://{folder}/rendezvous",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        ranks = current_ranks(torch.device("cpu"))
        out = {"main": is_main_process()}
        for method in ("maml", "protonet"):
            net, batch, loss, metrics = _gradients(
                method, share_of(N_TASKS, rank, WORLD)
            )
            params = [p for p in net.parameters() if p.requires_grad]
            loss, metrics = ranks.reduce_meta_gradient(params, batch, loss, metrics)
            out[f"grad_{method}"] = [p.grad.clone() for p in params]
            out[f"loss_{method}"] = (loss, metrics)
        X, y = _data()
        for name, changes in RUNS.items():
            model = meta_train(X, y, _settings(**changes), _targets(name))
            out[f"run_{name}"] = (dict(model.state), [dict(r) for r in model.history])
            if name == "maml":  # warm-started: episodes of (seed, 6 iterations)
                warm = meta_train(X, y, _settings(**changes), init=model)
                out["warm_maml"] = dict(warm.state)
        # the checkpoint path is free to differ: each rank names its own file
        checkpoint = f"{folder}/checkpoint{rank}.safetensors"
        meta_train(X, y, _settings(**RUNS["maml"], checkpoint=checkpoint))
        dist.barrier()
        out["checkpoints"] = sorted(p.name for p in Path(folder).glob("checkpoint*"))
        # resumed from node-local files: rank 0 finds its file, rank 1 none
        try:
            meta_train(X, y, _settings(**RUNS["maml"], checkpoint=checkpoint))
        except ValueError as exc:
            out["error_local_checkpoint"] = str(exc)
        # the path is held by another run (rank 0's lock): every rank raises
        held = CheckpointLock(Path(f"{folder}/held.safetensors"))
        if rank == 0:
            held.acquire()
        try:
            meta_train(X, y, _settings(**RUNS["maml"], checkpoint=str(held.checkpoint)))
        except ValueError as exc:
            out["error_held_checkpoint"] = str(exc)
        held.release()
        # rank 1 cannot read its file: every rank raises, none waits
        bad = Path(f"{folder}/bad{rank}.safetensors")
        if rank == 1:
            bad.write_bytes(b"not a checkpoint")
        try:
            meta_train(X, y, _settings(**RUNS["maml"], checkpoint=str(bad)))
        except ValueError as exc:
            out["error_bad_checkpoint"] = str(exc)
        # interrupted after iteration 3 (its checkpoint: 2), then resumed
        shared = f"{folder}/shared.safetensors"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Meta-training interrupted"
            meta_train(
                X, y, _settings(**RUNS["maml"], checkpoint=shared), callbacks=[Stop()]
            )
        out["interrupted_at"] = load_checkpoint(shared)["state"]["n_iter"]
        resumed = meta_train(X, y, _settings(**RUNS["maml"], checkpoint=shared))
        out["resumed"] = dict(resumed.state)
        # SIGTERM on rank 1 in iteration 3: its request rides iteration 4's
        # all-reduce, and every rank ends after iteration 4
        terminated = f"{folder}/terminated.safetensors"
        settings = _settings(**RUNS["maml"], checkpoint=terminated)
        with TerminationGuard() as outer, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Meta-training interrupted"
            model = meta_train(X, y, settings, callbacks=[SigtermOnRank1()])
        training = model.config["training"]
        out["sigterm"] = (
            outer.requested,
            training["n_iter"],
            training["interrupted_by"],
        )
        dist.barrier()
        out["sigterm_checkpoint"] = load_checkpoint(terminated)["state"]["n_iter"]
        out["sigterm_resumed"] = dict(meta_train(X, y, settings).state)
        # Ctrl-C on rank 1 in iteration 3: the same, and fit returns everywhere
        ctrl_c = f"{folder}/ctrl_c.safetensors"
        settings = _settings(**RUNS["maml"], checkpoint=ctrl_c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Meta-training interrupted"
            model = meta_train(X, y, settings, callbacks=[SigintOnRank1()])
        training = model.config["training"]
        out["ctrl_c"] = (training["n_iter"], training["interrupted_by"])
        dist.barrier()
        out["ctrl_c_checkpoint"] = load_checkpoint(ctrl_c)["state"]["n_iter"]
        with warnings.catch_warnings():  # the same without a checkpoint
            warnings.simplefilter("ignore")
            settings = _settings(**RUNS["maml"])
            model = meta_train(X, y, settings, callbacks=[SigintOnRank1()])
        training = model.config["training"]
        out["ctrl_c_alone"] = (training["n_iter"], training["interrupted_by"])
        batch_norm = dict(method="protonet", backbone=_bn_mlp, backbone_params=None)
        out["run_batch_norm"] = dict(meta_train(X, y, _settings(**batch_norm)).state)
        out["two_threads"] = _two_threads(X, y)
        for name, (X_, y_, changes) in {
            "small_batch": (X, y, {"meta_batch_size": 1}),
            "other_data": (X, (y + rank) % 10, {}),
            "other_values": (X[:, ::-1].copy() if rank else X, y, {}),
        }.items():
            try:
                meta_train(X_, y_, _settings(**changes))
            except ValueError as exc:
                out[f"error_{name}"] = str(exc)
        torch.save(out, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    mp.spawn(_worker, args=(str(folder),), nprocs=WORLD, join=True)
    return [torch.load(folder / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("method", ["maml", "protonet"])
def test_all_reduced_meta_gradient_is_the_whole_meta_batch(ranks_out, method):
    net, _, loss, metrics = _gradients(method)
    reference = [p.grad for p in net.parameters() if p.requires_grad]
    for out in ranks_out:
        for got, want in zip(out[f"grad_{method}"], reference, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        got_loss, got_metrics = out[f"loss_{method}"]
        assert got_loss == pytest.approx(loss, rel=1e-10)
        assert got_metrics == pytest.approx(metrics, rel=1e-6)  # float32 accuracy
    # each rank alone does not have it: the all-reduce did the work
    partial = _gradients(method, share_of(N_TASKS, 0, WORLD))[0]
    grads = [p.grad for p in partial.parameters() if p.requires_grad]
    assert not all(torch.allclose(a, b) for a, b in zip(grads, reference, strict=True))


def _without_time(history):
    return [{k: v for k, v in record.items() if k != "elapsed"} for record in history]


@pytest.mark.parametrize("name", list(RUNS))
def test_two_processes_train_the_weights_one_process_trains(ranks_out, name):
    X, y = _data()
    single = meta_train(X, y, _settings(**RUNS[name]), _targets(name))
    (state0, history0), (state1, history1) = (out[f"run_{name}"] for out in ranks_out)
    for key, value in state0.items():  # ranks agree to the bit
        assert torch.equal(value, state1[key]), key
    assert _without_time(history0) == _without_time(history1)
    initial = meta_train(
        X, y, _settings(**RUNS[name], learning_rate=0.0), _targets(name)
    ).state
    for key, value in single.state.items():
        if key in ROUNDING_DRIVEN.get(name, ()):
            continue
        if key == "extra.base_mean":
            # embedded in eval mode after training, with batch norm's running
            # statistics, which 2 processes average from their halves of each
            # batch: close, not equal to 1e-4
            torch.testing.assert_close(state0[key], value, rtol=0.05, atol=0.02)
            continue
        torch.testing.assert_close(state0[key], value, rtol=1e-4, atol=1e-5)
        if "input" not in key:  # not the input scaling: trained
            assert not torch.equal(value, initial[key]), key
    assert len(history0) == len(single.history)
    for got, want in zip(history0, single.history, strict=True):
        assert got.keys() == want.keys()
        for key in got.keys() - {"elapsed"}:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
    if RUNS[name].get("early_stopping"):
        assert "val_loss" in history0[-1]


def test_a_warm_start_draws_the_episodes_one_process_draws(ranks_out):
    """A warm start's episodes come from the seed (rank 0's) and the
    iterations behind the starting model, the same on every rank."""
    X, y = _data()
    first = meta_train(X, y, _settings(**RUNS["maml"]))
    single = meta_train(X, y, _settings(**RUNS["maml"]), init=first).state
    warm0, warm1 = (out["warm_maml"] for out in ranks_out)
    for key, value in single.items():
        assert torch.equal(warm0[key], warm1[key]), key
        if key not in ROUNDING_DRIVEN["maml"]:
            torch.testing.assert_close(warm0[key], value, rtol=1e-4, atol=1e-5)


def test_batch_norm_running_statistics_agree_across_ranks(ranks_out):
    """Each rank normalises its share with its own batch statistics (as DDP
    without SyncBatchNorm); the running statistics are averaged, so the ranks
    still end with the same model."""
    one, two = (out["run_batch_norm"] for out in ranks_out)
    for key, value in one.items():
        assert torch.equal(value, two[key]), key
    assert not torch.equal(one["backbone.1.running_mean"], torch.zeros(16))


def test_refused_runs_raise_on_every_rank(ranks_out):
    for out in ranks_out:
        assert (
            "meta_batch_size=1 is smaller than the 2 processes"
            in (out["error_small_batch"])
        )
        assert "different runs" in out["error_other_data"]
        # the same shape and y, other values of X
        assert "different runs (data: X's values" in out["error_other_values"]
        assert "rank(s) [1]" in out["error_other_values"]
    assert [out["main"] for out in ranks_out] == [True, False]


def test_a_second_thread_meta_training_in_the_run_raises_not_hangs(ranks_out):
    for rank, out in enumerate(ranks_out):
        first, second = out["two_threads"]
        assert first == "MetaModel"  # the first fit went on to the end
        assert "Another thread of this process is meta-training" in second
        assert f"(rank {rank} of 2)" in second


def test_only_rank_0_writes_the_checkpoint(ranks_out):
    assert ranks_out[1]["checkpoints"] == ["checkpoint0.safetensors"]


def test_ranks_resuming_from_different_checkpoints_raise_on_every_rank(ranks_out):
    for out in ranks_out:
        message = out["error_local_checkpoint"]
        assert "found different checkpoints" in message
        assert (
            "rank 0 resumes after iteration 6; rank 1 starts afresh (no file)"
            in message
        )
        assert "file system all processes share" in message
    assert "is not a skmeta checkpoint" in ranks_out[1]["error_bad_checkpoint"]
    assert (
        "could not be used by process(es) [1]" in (ranks_out[0]["error_bad_checkpoint"])
    )


def test_a_checkpoint_another_run_holds_is_refused_on_every_rank(ranks_out):
    """Rank 0 writes the checkpoint and takes its lock; refused, it tells
    the other ranks, which raise too rather than wait."""
    assert (
        "is in use by another meta-training run"
        in (ranks_out[0]["error_held_checkpoint"])
    )
    assert (
        "could not be used by process(es) [0]"
        in (ranks_out[1]["error_held_checkpoint"])
    )


def test_resumed_from_a_checkpoint_every_rank_ends_as_if_uninterrupted(ranks_out):
    for out in ranks_out:
        assert out["interrupted_at"] == 2  # the file the second run resumed from
        uninterrupted = out["run_maml"][0]
        for key, value in out["resumed"].items():
            assert torch.equal(value, uninterrupted[key]), key


def test_sigterm_on_one_rank_ends_every_rank_after_the_same_iteration(ranks_out):
    assert [out["sigterm"] for out in ranks_out] == [
        (True, 4, "SIGTERM"),  # rank 0 passes it on too: its script ends
        (True, 4, "SIGTERM"),
    ]
    for out in ranks_out:
        assert out["sigterm_checkpoint"] == 4
        uninterrupted = out["run_maml"][0]
        for key, value in out["sigterm_resumed"].items():
            assert torch.equal(value, uninterrupted[key]), key


def test_ctrl_c_on_one_rank_ends_every_rank_after_the_same_iteration(ranks_out):
    """Ctrl-C on one rank ended that rank's loop alone: the others waited for
    it in the next all-reduce ("Connection closed by peer": a reviewer)."""
    for out in ranks_out:
        assert out["ctrl_c"] == (4, "KeyboardInterrupt")
        assert out["ctrl_c_checkpoint"] == 4
        assert out["ctrl_c_alone"] == (4, "KeyboardInterrupt")  # no checkpoint


def test_outside_a_distributed_run_nothing_changes(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert current_ranks(torch.device("cpu")) is None
    monkeypatch.setenv("WORLD_SIZE", "2")  # but no MASTER_ADDR: not torchrun
    assert current_ranks(torch.device("cpu")) is None
    # torchrun's environment, inherited by a pool's worker (e.g. joblib's)
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "1")
    monkeypatch.setattr(
        multiprocessing, "parent_process", lambda: multiprocessing.current_process()
    )
    monkeypatch.setattr(run_guard, "_pool_worker_warned", False)
    monkeypatch.setenv("RANK", "1")
    with pytest.warns(UserWarning, match="rank 1 of a torchrun launch started"):
        assert current_ranks(torch.device("cpu")) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        assert current_ranks(torch.device("cpu")) is None
    assert not dist.is_initialized()
    assert is_main_process()
    monkeypatch.undo()  # torchrun's environment, before any process group
    for name, value in dict(WORLD_SIZE="2", MASTER_ADDR="localhost", RANK="1").items():
        monkeypatch.setenv(name, value)
    assert not is_main_process()
    monkeypatch.setenv("SKMETA_DISTRIBUTED", "0")
    assert is_main_process()
    assert current_ranks(torch.device("cpu")) is None


def _stream(kind, parts, augment):
    """A task (3 tasks a meta-batch) or labelled (10 rows) stream, seeded."""
    X = np.arange(300 * 4, dtype=np.float32).reshape(300, 4)
    y = np.repeat(np.arange(30), 10)
    rows, rng = Rows(X, (4,), torch.device("cpu")), np.random.default_rng(0)
    if augment:
        rows.augment = make_augmentation(
            FeatureAugmentation(noise=0.1), (4,), torch.zeros(4), torch.ones(4)
        )
    if kind == "tasks":
        settings = TrainSettings(n_way=3, k_shot=2, n_query=2, input_shape=(4,))
        index = ClassIndex.from_labels(y)
        return task_batches(rows, index, settings, rng, 3, 2, 3, parts=parts)
    return labelled_batches(rows, np.arange(300), y, 10, rng, parts)


def _rows_of(batch):
    if hasattr(batch, "support_x"):
        return [batch.support_x, batch.query_x]
    return [batch.x, batch.y.float()[:, None]]


@pytest.mark.parametrize("kind", ["tasks", "labelled"])
@pytest.mark.parametrize("augment", [False, True])
def test_the_shares_of_the_ranks_make_up_the_whole_batch(kind, augment):
    """Each rank's share, drawn from the same seed, is its part of the batch
    one process draws (uneven: 3 tasks or 10 rows in 2 parts of 1 and 2, or 5
    and 5), augmentation's random draws included."""
    shares = []
    for parts in [(0, 1), (0, 2), (1, 2)]:
        torch.manual_seed(0)
        stream = _stream(kind, parts, augment)
        shares.append([_rows_of(next(stream)) for _ in range(3)])
    whole, first, second = shares
    for w, a, b in zip(whole, first, second, strict=True):
        for tensor_w, tensor_a, tensor_b in zip(w, a, b, strict=True):
            assert 0 < tensor_a.shape[0] < tensor_w.shape[0]
            assert torch.equal(torch.cat([tensor_a, tensor_b]), tensor_w)


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="needs at most 1 GPU")
def test_more_processes_than_gpus_is_a_clear_error():
    ranks = Ranks(rank=1, size=2, local_rank=1, device=torch.device("cuda"))
    with pytest.raises(ValueError, match="LOCAL_RANK=1 on GPU 1.*one process per GPU"):
        ranks.local_gpu()


SCRIPT = """
import sys
import numpy as np
import torch.distributed as dist
from skmeta import MetaFeatureExtractor
from skmeta.meta.episodes import ClassIndex
from skmeta.meta.distributed import is_main_process
from skmeta.meta.io import load_checkpoint
from skmeta.meta.model import MetaModel

folder = sys.argv[1]
rng = np.random.default_rng(0)
y = np.repeat(np.arange(8), 10)
X = (rng.normal(size=(y.size, 6)) + y[:, None] % 3).astype(np.float32)
extractor = MetaFeatureExtractor(
    method="maml", n_way=3, k_shot=2, n_query=3, meta_batch_size=2, max_iter=4,
    early_stopping=True, validation_fraction=0.3, n_iter_no_change=1,
    backbone_params={"hidden_sizes": (16,), "out_features": 8}, verbose=1,
).fit(X, y)
rank = dist.get_rank()
extractor.meta_model_.save(f"{folder}/rank{rank}.safetensors")
if is_main_process():
    extractor.meta_model_.save(f"{folder}/model.safetensors")
"""


def _torchrun(args, tmp_path, run=subprocess.run, **options):
    """torchrun with 2 processes on `args` (``subprocess.run``, or `run`)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    options = options or dict(capture_output=True, timeout=300)
    return run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(WORLD),
            "--log-dir",
            str(tmp_path / "logs"),
            "--redirects",
            "3",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        text=True,
        **options,
    )


def _logs(tmp_path, rank="*", stream="std*"):
    """What torchrun's processes printed (its --log-dir files)."""
    files = sorted((tmp_path / "logs").glob(f"*/attempt_*/{rank}/{stream}.log"))
    return "".join(f.read_text() for f in files)


def test_estimator_fit_under_torchrun(tmp_path):
    (tmp_path / "fit.py").write_text(SCRIPT)
    done = _torchrun(["fit.py", str(tmp_path)], tmp_path)
    assert done.returncode == 0, _logs(tmp_path)
    one, two = (MetaModel.load(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert one.state.keys() == two.state.keys()
    for key, value in one.state.items():
        assert torch.equal(value, two.state[key]), key
    assert _without_time(one.history) == _without_time(two.history)
    assert "val_loss" in one.history[-1]
    assert one.config["training"]["world_size"] == WORLD
    assert (tmp_path / "model.safetensors").is_file()
    # the progress bar on rank 0 only
    assert "meta-training maml" in _logs(tmp_path, 0, "stderr")
    assert "meta-training maml" not in _logs(tmp_path, 1, "stderr")


SIGNALLED = """
import json, sys
import numpy as np
import torch.distributed as dist
from skmeta.meta.callbacks import Callback
from skmeta.meta.train import TrainSettings, meta_train

class Last(Callback):
    def on_train_end(self, loop):
        self.seen = [loop.n_iter, loop.interrupted_by]

folder, last = sys.argv[1], Last()
rng = np.random.default_rng(0)
y = np.repeat(np.arange(8), 10)
X = (rng.normal(size=(y.size, 6)) + y[:, None] % 3).astype(np.float32)
settings = TrainSettings(
    method="maml", n_way=3, k_shot=2, n_query=3, input_shape=(6,),
    meta_batch_size=2, max_iter=10**6, checkpoint=f"{folder}/run.ckpt",
    checkpoint_every=5, backbone_params={"hidden_sizes": (16,), "out_features": 8},
)
try:
    meta_train(X, y, settings, callbacks=[last])
finally:  # after SIGTERM too (SystemExit)
    with open(f"{folder}/rank{dist.get_rank()}.json", "w") as file:
        json.dump(last.seen, file)
"""


@pytest.mark.parametrize(
    "name, by",
    [
        ("SIGINT", "KeyboardInterrupt"),
        pytest.param("SIGTERM", "SIGTERM", marks=pytest.mark.slow),
    ],
)
def test_a_signal_to_torchrun_ends_every_rank_after_the_same_iteration(
    tmp_path, name, by
):
    """torchrun's agent forwards SIGINT and SIGTERM to its workers (each in a
    session of its own: a terminal's Ctrl-C reaches the agent alone), waits
    for them, then exits 1 (SignalException). Ctrl-C reached each rank at
    another point and cut its loop there: the ranks' collectives failed."""
    (tmp_path / "signalled.py").write_text(SIGNALLED)
    agent = _torchrun(
        ["signalled.py", str(tmp_path)],
        tmp_path,
        subprocess.Popen,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_signals,
    )
    try:
        wait_for(tmp_path / "run.ckpt", agent)  # rank 0 wrote iteration 5
        agent.send_signal(getattr(signal, name))
        _, stderr = agent.communicate(timeout=120)
    finally:
        agent.kill()
    assert agent.returncode == 1, stderr
    assert "SignalException" in stderr
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] == seen[1], _logs(tmp_path)
    assert seen[0][1] == by, _logs(tmp_path)
    assert load_checkpoint(tmp_path / "run.ckpt")["state"]["n_iter"] == seen[0][0]


@pytest.mark.slow
def test_cli_train_under_torchrun_writes_one_model(tmp_path):
    X, y = _data()
    np.savez(tmp_path / "data.npz", X=X, y=y)
    done = _torchrun(
        [
            "-m",
            "skmeta",
            "train",
            str(tmp_path / "data.npz"),
            "--out",
            str(tmp_path / "model.safetensors"),
            "--method",
            "protonet",
            "--max-iter",
            "3",
            "--n-way",
            "3",
            "--k-shot",
            "2",
            "--n-query",
            "2",
            "--meta-batch-size",
            "2",
            "--quiet",
        ],
        tmp_path,
    )
    assert done.returncode == 0, _logs(tmp_path)
    assert "wrote " in _logs(tmp_path, 0, "stdout")
    assert "wrote " not in _logs(tmp_path, 1, "stdout")  # rank 0 only
    model = MetaModel.load(tmp_path / "model.safetensors")
    assert model.config["training"]["world_size"] == WORLD
