"""The network a :class:`~skmeta.meta.model.MetaModel` describes, built from
its config and loaded with its weights, ready for inference on a device."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from .net import MetaNet, build_net
from .seeding import default_generator_untouched

__all__ = ["network_of"]


def network_of(
    config: Mapping,
    backbone: Callable | None,
    state: Mapping[str, torch.Tensor],
    device: torch.device,
    on_meta: bool = True,
) -> MetaNet:
    """The network `config` describes, with the weights `state`, in eval mode
    on `device` and frozen.

    Parameters
    ----------
    config : mapping
        The model's config (a plain, mutable copy).
    backbone : callable or None
        The backbone factory or module a custom model was loaded with.
    state : mapping of str to Tensor
        Every weight, the ``"extra."`` ones (method parameters, statistics)
        included; on the CPU the network shares their memory.
    device : torch.device
    on_meta : bool, default=True
        Build it on the ``meta`` device first (see :func:`_built`).

    Returns
    -------
    MetaNet

    Raises
    ------
    ValueError
        When the weights do not fit the network the config describes.
    """
    net, on_meta = _built(config, backbone, on_meta)
    for name, tensor in state.items():
        if name.startswith("extra."):
            net.extra[name[len("extra.") :]] = torch.nn.Parameter(
                tensor.clone(), requires_grad=False
            )
    expected, found = set(net.state_dict()), set(state)
    if expected != found:
        raise ValueError(
            "The weights do not fit the network the config describes: "
            f"missing {sorted(expected - found)[:5]}, "
            f"unexpected {sorted(found - expected)[:5]}."
        )
    try:
        net.load_state_dict(dict(state), assign=on_meta or device.type == "cpu")
    except RuntimeError as exc:
        raise ValueError(f"The weights do not fit the network: {exc}") from None
    if on_meta and _left_on_meta(net):
        # a tensor the weights do not hold (a buffer left out of state_dict,
        # a plain tensor attribute): built again with its own initial values
        return network_of(config, backbone, state, device, on_meta=False)
    net.requires_grad_(False)
    return net.to(device).eval()


def _built(config: Mapping, backbone, on_meta: bool = True) -> tuple[MetaNet, bool]:
    """The network `config` describes, its initial weights to be replaced,
    and whether it was built on the ``meta`` device.

    With its backbone (a built-in or torchvision one; a user's module is
    built on the CPU) on the ``meta`` device nothing is allocated nor drawn
    from torch's default generator (the net's own buffers are computed), so
    no seeded run in another thread is waited for (or disturbed); a network
    that cannot be built there is built on the CPU in a block that undoes
    its draws, taking the seeded runs' turn
    (:func:`~.seeding.default_generator_untouched`).
    """
    # a user's module may keep tensors where no check finds them (in a list,
    # on a helper object), or act in __init__: built as written, on the CPU
    if on_meta and config.get("backbone") != "custom":
        try:
            return build_net(config, backbone, backbone_device="meta"), True
        except Exception:  # an operation without a meta kernel, say
            pass
    with default_generator_untouched():
        return build_net(config, backbone), False


def _left_on_meta(net: torch.nn.Module) -> bool:
    """Whether a parameter, buffer or plain tensor attribute of `net` is still
    on the ``meta`` device (without values)."""
    for module in net.modules():
        tensors = [*module._parameters.values(), *module._buffers.values()]
        tensors += [v for v in vars(module).values() if isinstance(v, torch.Tensor)]
        if any(t is not None and t.is_meta for t in tensors):
            return True
    return False
