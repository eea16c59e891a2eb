"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, 2018).

"Learning to Compare": a learnt relation module ``g`` scores each (class,
query) pair from the concatenation of the class's representation and the
query's embedding, ``r = sigmoid(g([c, q]))`` in [0, 1], and the meta-training
loss is the mean squared error between these relation scores and the one-hot
targets. The query is labelled by its highest relation score. ``g`` is shared
by every pair, so a model meta-trained on N-way episodes classifies any number
of classes.

Three differences from the paper:

- The relation module. The paper's (on Omniglot) is two convolutional blocks
  (with batch norm) on the stacked feature maps of class and query, then two
  fully connected layers (8 hidden units). Backbones here return flat
  embeddings of any width, so ``g`` is a small MLP on ``[c, q]``:
  ``2 * embedding_dim -> hidden -> 1`` with a ReLU, its weights
  meta-parameters (``net.extra["relation_*"]``, initialised as
  ``torch.nn.Linear``'s).
- Centring instead of the relation module's batch norm. Before ``g``, the
  class representations and the queries are shifted by the mean of the task's
  class representations, ``g([c - m, q - m])``: ``g`` then does not see where
  the task lies in the embedding, only how classes and queries lie in it.
  Batch norm on the first layer's outputs does about the same with the
  statistics of the episode's pairs (``W_c c + W_q q`` less its mean over the
  pairs); the support's mean here keeps a query's scores independent of the
  other queries. Without either, on the ``make_blobs`` data of the tests, the
  mean squared error is first lowered by moving every embedding the same way
  until each hidden unit is always on or always off: ``g`` is then linear,
  no longer compares, and meta-training stays at chance.
- The class representation. The paper sums the K support embeddings of a
  class; here it is their mean. Both are the same for one shot, but a sum
  grows with the number of shots, so a relation module meta-trained on
  K-shot episodes would be handed inputs of another scale by a support set of
  another size, or by classes with unequal numbers of rows (both ordinary in
  ``FewShotClassifier.fit``). The mean keeps the scale of one embedding (as
  Chen et al. 2019's reimplementation). Meta-training and deployment both use
  the mean.

``loss="cross_entropy"`` replaces the paper's mean squared error by the
cross-entropy of the pre-sigmoid scores, taken as logits over the classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..net import MetaNet, embed_rows
from ..setting_checks import check_int_setting
from .base import Algorithm, TaskBatch
from .protonet import embed_support_and_query, prototypes, prototypes_of_tasks

__all__ = ["RelationNetworks", "relation_logits"]

LOSSES = ("mse", "cross_entropy")
# names of the relation module's weights in ``net.extra``
WEIGHTS = (
    "relation_hidden_weight",
    "relation_hidden_bias",
    "relation_out_weight",
    "relation_out_bias",
)


def _linear_weights(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight ``(n_out, n_in)`` and bias ``(n_out,)`` drawn as
    ``torch.nn.Linear``'s: uniform in ``+-1 / sqrt(n_in)``."""
    bound = n_in**-0.5
    weight = torch.empty(n_out, n_in).uniform_(-bound, bound)
    return weight, torch.empty(n_out).uniform_(-bound, bound)


def relation_logits(
    queries: torch.Tensor, classes: torch.Tensor, weights: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """Pre-sigmoid relation scores of every (query, class) pair, batched over
    leading dimensions.

    ``g([c, q]) = w_out . relu(W_hidden [c, q] + b_hidden) + b_out``, computed
    without building the concatenations: ``W_hidden [c, q]`` is
    ``W_c c + W_q q`` with ``W_hidden = [W_c, W_q]``.

    Parameters
    ----------
    queries : Tensor of shape (..., n_query, dim)
    classes : Tensor of shape (..., n_classes, dim)
        The class representations (both centred by the caller).
    weights : tuple of Tensor
        ``W_hidden`` of shape (hidden, 2 * dim), ``b_hidden`` (hidden,),
        ``w_out`` (1, hidden) and ``b_out`` (1,), in the dtype of the
        embeddings.

    Returns
    -------
    Tensor of shape (..., n_query, n_classes)
    """
    w_hidden, b_hidden, w_out, b_out = weights
    dim = classes.shape[-1]
    class_part = classes @ w_hidden[:, :dim].mT  # (..., n_classes, hidden)
    query_part = queries @ w_hidden[:, dim:].mT + b_hidden  # (..., n_query, hidden)
    hidden = F.relu(query_part.unsqueeze(-2) + class_part.unsqueeze(-3))
    return (hidden @ w_out.mT).squeeze(-1) + b_out


class RelationNetworks(Algorithm):
    """Relation Networks: a learnt relation module compares each query with
    each class.

    Parameters
    ----------
    hidden : int, default=256
        Hidden units of the relation module. The paper's fully connected
        layer has 8, after two convolutional blocks of 64 channels at every
        location of the feature maps; a module on flat embeddings needs the
        width itself: on Omniglot (strided Conv4, the estimators' defaults,
        3 CPU-minutes of meta-training, ``benchmarks/all_methods.py``) 8
        units reached 26.75% 5-way 1-shot and 256 reached 91.12%
        (``benchmarks/RESULTS.md``).
    loss : {"mse", "cross_entropy"}, default="mse"
        Meta-training loss: the paper's mean squared error between the
        relation scores and the one-hot targets (over every query and class),
        or the cross-entropy of the pre-sigmoid scores. It also sets what
        :meth:`predict` returns (see there). Kept as the attribute
        ``relation_loss``: ``loss`` is the method computing it.
    """

    name = "relation"
    summary = "Relation Networks: a learnt module scores each query against each class"
    settings = ("hidden", "loss")
    classifies_embeddings = True
    fixed_embedding_width = True  # the relation module is sized by the embedding
    prototype_deployment = False
    # the paper's Adam rate, and the estimators' default for every method but
    # ProtoNet (whose 4e-3 was chosen on Omniglot; this one is not tuned here)
    default_learning_rate = 1e-3

    def __init__(self, hidden: int = 256, loss: str = "mse") -> None:
        self.hidden = check_int_setting("hidden", hidden)
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got loss={loss!r}.")
        self.relation_loss = str(loss)

    def method_params(self) -> dict:
        return {"hidden": self.hidden, "loss": self.relation_loss}

    def meta_parameters(self, net, embedding_dim, n_classes):
        w_hidden, b_hidden = _linear_weights(2 * embedding_dim, self.hidden)
        w_out, b_out = _linear_weights(self.hidden, 1)
        return dict(zip(WEIGHTS, (w_hidden, b_hidden, w_out, b_out), strict=True))

    def _weights(self, net: MetaNet, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return tuple(net.extra[name].to(dtype) for name in WEIGHTS)

    def loss(self, net: MetaNet, batch: TaskBatch):
        support, query = embed_support_and_query(net, batch)
        classes = prototypes_of_tasks(support, batch.support_y, batch.n_way)
        centre = classes.mean(1, keepdim=True)  # every way has rows
        logits = relation_logits(
            query - centre, classes - centre, self._weights(net, query.dtype)
        )
        logits = logits.reshape(-1, batch.n_way)
        targets = batch.query_y.repeat(batch.n_tasks)
        accuracy = (logits.argmax(1) == targets).float().mean().item()
        if self.relation_loss == "cross_entropy":
            return F.cross_entropy(logits, targets), {"accuracy": accuracy}
        # the paper's: every (query, class) pair's score against 1 or 0; each
        # task has as many pairs, so this is the mean of the tasks' losses
        onehot = F.one_hot(targets, batch.n_way).to(logits.dtype)
        return F.mse_loss(torch.sigmoid(logits), onehot), {"accuracy": accuracy}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        with torch.no_grad():
            embeddings = embed_rows(net, support_x, batch_size)
            # a class without rows gets a zero representation (the estimators
            # mask it out), and no part in the centre
            classes = prototypes(embeddings, support_y, n_classes)
            has_rows = torch.bincount(support_y, minlength=n_classes) > 0
            return {"classes": classes, "centre": classes[has_rows].mean(0)}

    def predict(self, net, state, query_x, batch_size=100):
        """Class scores of query rows.

        Parameters
        ----------
        net : MetaNet
        state : dict
            From :meth:`adapt`: ``"classes"``, the class representations, of
            shape (n_classes, embedding_dim), and ``"centre"``, the mean of
            those of the classes with rows, of shape (embedding_dim,).
        query_x : Tensor of shape (n_query, n_features)
        batch_size : int, default=100
            Rows per forward pass when embedding.

        Returns
        -------
        Tensor of shape (n_query, n_classes), float64
            With ``loss="mse"``, the log of the relation scores,
            ``log sigmoid(g([c, q]))``: their exponentials are the paper's
            scores in [0, 1], and their softmax (``predict_proba``) is the
            relation scores divided by their sum over the classes. With
            ``loss="cross_entropy"``, the pre-sigmoid scores, the logits that
            loss trained. Either way the highest is the prediction.
        """
        # float64 relation module: a row's scores must not depend on its batch
        query = embed_rows(net, query_x, batch_size).double()
        centre = state["centre"].double()
        logits = relation_logits(
            query - centre,
            state["classes"].double() - centre,
            self._weights(net, torch.float64),
        )
        if self.relation_loss == "cross_entropy":
            return logits
        return F.logsigmoid(logits)

    def episode_metrics(self, net, batch):
        with torch.no_grad():
            loss, metrics = self.loss(net, batch)
        return loss.item(), metrics["accuracy"]
