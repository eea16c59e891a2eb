"""Mixed precision for meta-training: autocast, and loss scaling for float16.

``"float32"`` (the default) runs every op in float32 and takes the speed paths
of :mod:`skmeta.meta.accel`. ``"bfloat16"`` and ``"float16"`` run the forward
passes under ``torch.autocast`` (matrix products and convolutions in 16 bits,
reductions and the loss in float32): on a GPU with tensor cores that is up to
several times faster. They take the reference computations,
``algorithm.loss(net, batch).backward()`` without the speed paths of
:mod:`.accel`: those call fused kernels autocast does not know, and their
worker threads would not see autocast, a per-thread setting. ``"float16"``
also scales the loss (``torch.amp.GradScaler``) so that small gradients do not
underflow; a step whose gradients overflow is skipped and the scale lowered.
The weights and the optimiser's state stay float32, and so does the saved model.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from .caller import user_stacklevel

__all__ = ["PRECISIONS", "Precision", "warn_if_inner_loop_unscaled", "warn_if_slow"]

PRECISIONS = ("float32", "bfloat16", "float16")


class Precision:
    """How one meta-training run computes its meta-gradients.

    Parameters
    ----------
    precision : {"float32", "bfloat16", "float16"}
    device : torch.device
        The training device; float16 needs a device with float16 autocast
        (CUDA; recent torch also on CPUs); on a CPU it is slow
        (:func:`warn_if_slow`).
    """

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {PRECISIONS}, got {precision!r}."
            )
        self.precision = precision
        self.device = torch.device(device)
        self.dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(
            precision
        )
        self.scaler = (
            torch.amp.GradScaler(self.device.type) if precision == "float16" else None
        )

    @property
    def mixed(self) -> bool:
        """Whether ops run in 16 bits (and the reference path is taken)."""
        return self.dtype is not None

    @contextlib.contextmanager
    def autocast(self):
        """Context in which the forward passes run: autocast, and (in this
        thread) the reference computations only, whose ops autocast knows."""
        if not self.mixed:
            yield
            return
        from . import accel

        with accel.reference_only(), torch.autocast(self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate `loss`, scaled for float16."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer) -> None:
        """Divide the gradients by the loss scale (before clipping reads them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def state_dict(self) -> dict:
        """The loss scaler's state (scale, growth tracker), empty without one."""
        return {} if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

    def step(self, optimizer) -> None:
        """Step the optimiser; with float16, skip a step whose gradients
        overflowed and adjust the scale."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


#: torch's checks of the CPU's native 16-bit arithmetic, by precision
#: (oneDNN runs autocast's convolutions on it).
_NATIVE_CPU_CHECKS = {
    "bfloat16": ("_is_amx_tile_supported", "_is_avx512_bf16_supported"),
    "float16": ("_is_amx_fp16_supported",),
}


def native_on_cpu(precision: str) -> bool:
    """Whether this CPU computes `precision` natively (AMX, AVX512-BF16);
    False where torch cannot tell."""
    checks = (getattr(torch.cpu, name, None) for name in _NATIVE_CPU_CHECKS[precision])
    return any(check is not None and check() for check in checks)


def warn_if_slow(precision: str, device) -> None:
    """Warn (once per call: :func:`~.train.meta_train` calls it once per run)
    when a 16-bit `precision` runs on a CPU without native arithmetic for it.
    Measured on 2 cores with AMX, 10 iterations of 5-way 5-shot Conv4 on 28x28
    images: float16 (no native support) 29.7 s against 0.62 s for float32
    (ProtoNet) and 91.1 against 2.3 s (MAML); bfloat16 (native) 0.44 and
    2.31 s, and 4.4 against 8.4 s for ProtoNet on 84x84 colour images."""
    cpu = torch.device(device).type == "cpu"
    if precision in _NATIVE_CPU_CHECKS and cpu and not native_on_cpu(precision):
        warnings.warn(
            f"precision={precision!r} on a CPU without native {precision} "
            "arithmetic: CPU autocast emulates it, many times slower than "
            "'float32' (float16: 48 times for a Conv4 ProtoNet on 2 cores). It "
            f"pays on a GPU, or a CPU with native {precision}; here use "
            "precision='float32'.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_inner_loop_unscaled(precision: str, algorithm) -> None:
    """Warn when float16 trains a method with an inner loop (MAML and its
    kind, Reptile): the loss scale covers the meta-loss only, and the inner
    loop's support gradients, taken in float16 without it, can underflow to
    zero and weaken adaptation without any error (bfloat16 has float32's
    range)."""
    if precision != "float16" or getattr(algorithm, "inner_steps", None) is None:
        return
    warnings.warn(
        f"precision='float16' with method={algorithm.name!r}: float16's loss "
        "scaling covers the meta-loss only, and the inner loop's gradients, "
        "unscaled, can underflow to zero. Use precision='bfloat16' (float32's "
        "range, no scaling needed) where the device has it.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
