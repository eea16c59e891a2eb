"""RFS (skmeta.meta.algorithms.rfs): pre-training, then born-again
self-distillation generations, each a fresh network taught by the frozen
previous one."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skmeta import FewShotClassifier
from skmeta.meta.algorithms import LabelledBatch, make_algorithm
from skmeta.meta.algorithms.rfs import distillation_loss
from skmeta.meta.callbacks import Callback
from skmeta.meta.model import MetaModel
from skmeta.meta.net import MetaNet
from skmeta.meta.train import TrainSettings, meta_train


def _settings(**changes):
    base = dict(
        n_way=5,
        k_shot=2,
        n_query=3,
        input_shape=(10,),
        max_iter=20,
        seed=5,
        method="rfs",
        method_params={"generations": 2},
    )
    return TrainSettings(**{**base, **changes})


def _net(algorithm, seed):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
    net = MetaNet(backbone, (4,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, 8, 3).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def test_distillation_loss_by_hand():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    T = 4.0
    p_t, p_s = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    torch.testing.assert_close(distillation_loss(s, t, T), T**2 * kl)
    assert distillation_loss(t, t, T) == pytest.approx(0.0, abs=1e-6)


def test_loss_with_teacher_is_weighted_cross_entropy_plus_kd_and_teacher_frozen():
    algorithm = make_algorithm("rfs", alpha=0.3, beta=0.7, temperature=2.0)
    student, teacher = _net(algorithm, 0).train(), _net(algorithm, 1).train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    bound = algorithm.with_teacher(teacher)
    assert algorithm.teacher is None  # the unbound method is unchanged
    assert not teacher.training  # eval mode: running batch-norm statistics
    assert not any(p.requires_grad for p in teacher.parameters())
    g = torch.Generator().manual_seed(2)
    batch = LabelledBatch(torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2] * 2))
    loss, _ = bound.loss(student, batch)
    logits = F.linear(
        student(batch.x), student.extra["head_weight"], student.extra["head_bias"]
    )
    with torch.no_grad():
        t_logits = F.linear(
            teacher(batch.x), teacher.extra["head_weight"], teacher.extra["head_bias"]
        )
    t_prob, log_s = torch.softmax(t_logits / 2, 1), torch.log_softmax(logits / 2, 1)
    kd = 4 * (t_prob * (t_prob.log() - log_s)).sum(1).mean()
    expected = 0.3 * F.cross_entropy(logits, batch.y) + 0.7 * kd
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    for k, v in teacher.state_dict().items():  # running statistics too
        torch.testing.assert_close(v, before[k])
    # generation 0: plain cross-entropy, as pre-training
    plain, _ = algorithm.loss(student, batch)
    torch.testing.assert_close(plain, F.cross_entropy(logits, batch.y))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"generations": -1}, ValueError, "generations must be an int >= 0"),
        ({"generations": 1.0}, TypeError, "generations must be an int"),
        ({"temperature": 0}, ValueError, "temperature must be a finite float"),
        ({"alpha": 0, "beta": 0}, ValueError, "not both 0"),
        ({"beta": "x"}, TypeError, "beta must be a finite float"),
    ],
)
def test_bad_settings_name_the_setting(params, error, match):
    with pytest.raises(error, match=match):
        make_algorithm("rfs", **params)


def test_generation_zero_is_pretraining_to_the_bit(blobs):
    X, y = blobs
    rfs = meta_train(X, y, _settings(method_params={"generations": 0}))
    pretrain = meta_train(X, y, _settings(method="pretrain", method_params={}))
    assert rfs.state.keys() == pretrain.state.keys()
    for name, tensor in pretrain.state.items():
        torch.testing.assert_close(rfs.state[name], tensor, rtol=0, atol=0)
    assert {r["generation"] for r in rfs.history} == {0}


class _Generations(Callback):
    """Records, per generation, the student and teacher at the start and the
    teacher's weights at the end."""

    def __init__(self):
        self.starts = []

    def on_train_begin(self, loop):
        teacher = loop.algorithm.teacher
        self.starts.append(
            {
                "net": loop.net,
                "teacher": teacher,
                "student": {k: v.clone() for k, v in loop.net.state_dict().items()},
                "teacher_state": None
                if teacher is None
                else {k: v.clone() for k, v in teacher.state_dict().items()},
            }
        )

    def on_train_end(self, loop):
        teacher = loop.algorithm.teacher
        if teacher is not None:
            self.starts[-1]["teacher_end"] = {
                k: v.clone() for k, v in teacher.state_dict().items()
            }
            self.starts[-1]["teacher_training"] = teacher.training


def test_each_generation_is_a_fresh_student_taught_by_the_frozen_previous(blobs):
    X, y = blobs
    record = _Generations()
    model = meta_train(X, y, _settings(), callbacks=[record])
    assert len(record.starts) == 3
    assert record.starts[0]["teacher"] is None
    for g in (1, 2):
        start = record.starts[g]
        assert start["teacher"] is record.starts[g - 1]["net"]  # the previous one
        assert start["net"] is not start["teacher"]
        assert not any(p.requires_grad for p in start["teacher"].parameters())
        assert start["teacher_training"] is False
        for k, v in start["teacher_state"].items():  # unchanged by training
            torch.testing.assert_close(start["teacher_end"][k], v, rtol=0, atol=0)
        # a fresh initialisation: neither the teacher's weights nor gen 0's
        weight = "backbone.layers.0.weight"
        assert not torch.equal(start["student"][weight], start["teacher_state"][weight])
        assert not torch.equal(
            start["student"][weight], record.starts[0]["student"][weight]
        )
    # the deployed model is the last student
    final = record.starts[2]["net"].state_dict()
    for name in ("backbone.layers.0.weight", "extra.head_weight"):
        torch.testing.assert_close(model.state[name], final[name].cpu())
    history = model.history
    assert [r["generation"] for r in history] == [0] * 20 + [1] * 20 + [2] * 20
    assert [r["iter"] for r in history] == list(range(1, 61))
    assert model.config["training"]["n_iter"] == 60
    assert model.config["method_params"]["generations"] == 2


def test_generations_refuse_checkpoints_and_warm_start(blobs, tmp_path):
    X, y = blobs
    with pytest.raises(ValueError, match="generations=2 trains a network per"):
        meta_train(X, y, _settings(checkpoint=str(tmp_path / "c.ckpt")))
    model = meta_train(X, y, _settings(method_params={"generations": 0}))
    with pytest.raises(ValueError, match="warm_start"):
        meta_train(X, y, _settings(), init=model)


def test_estimator_on_blobs_round_trip_and_fixed_settings(blobs, tmp_path):
    X, y = blobs
    base, novel = y < 16, np.flatnonzero(y >= 16)
    clf = FewShotClassifier(
        method="rfs",
        method_params={"generations": 1, "temperature": 4.0},
        max_iter=40,
        n_way=5,
        k_shot=2,
        n_query=3,
        random_state=0,
    )
    clf.fit(X[base], y[base])
    model = clf.meta_model_
    assert {r["generation"] for r in clf.history_} == {0, 1}
    assert clf.n_iter_ == 80
    support, queries = novel[::3], novel[1::3]
    deployed = FewShotClassifier(pretrained=model).fit(X[support], y[support])
    assert deployed.score(X[queries], y[queries]) > 0.7  # 8-way, chance 0.125
    model.save(tmp_path / "r.safetensors")
    loaded = MetaModel.load(tmp_path / "r.safetensors")
    again = FewShotClassifier(pretrained=loaded).fit(X[support], y[support])
    np.testing.assert_array_equal(
        again.predict_proba(X[queries]), deployed.predict_proba(X[queries])
    )
    # feature_norm adapts anew; generations is fixed by meta-training
    FewShotClassifier(pretrained=loaded, method_params={"feature_norm": "cl2n"}).fit(
        X[support], y[support]
    )
    with pytest.raises(ValueError, match="generations=2 differs"):
        FewShotClassifier(pretrained=loaded, method_params={"generations": 2}).fit(
            X[support], y[support]
        )
