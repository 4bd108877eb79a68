"""How a network executes: compiled with ``torch.compile`` and/or in the channels-last memory format.

Both are speed options: they change the order of floating-point operations, not what the network
computes, so results differ from the default only by rounding
(``tests/guarantees/test_training_options.py`` measures how much). On a GPU, channels-last lets
cuDNN use its NHWC convolution kernels (Tensor Cores under mixed precision), and ``torch.compile``
fuses the element-wise work between them
(https://pytorch.org/tutorials/intermediate/memory_format_tutorial.html,
https://pytorch.org/docs/stable/generated/torch.compile.html).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn


@dataclass(eq=False)  # a callback: compared by identity (Lightning sets attributes on it)
class NetworkExecution(Callback):
    """A callback that sets how the module's ``network`` executes, at ``setup`` of every stage.

    It runs before the strategy moves the module to its device and wraps it (DDP), in every
    process: a ``ddp_spawn`` process receives the network pickled, which drops its compiled forward.

    Args:
        compile: compile the network's forward in place (``nn.Module.compile``, TorchInductor). The
            first batches of each shape and mode pay the compilation; copies of the network (a
            teacher, a pickled network) run uncompiled.
        channels_last: keep the 4-D weights in ``torch.channels_last`` format. Inputs need no
            conversion: a convolution takes its weights' format, so the first one converts the batch
            and later layers keep the format.

    Example::

        trainer = pl.Trainer(callbacks=[NetworkExecution(compile=True, channels_last=True)])
        trainer.fit(module)  # a LightningModule whose network is module.network
    """

    compile: bool = False
    channels_last: bool = False

    @property
    def active(self) -> bool:
        """Whether it changes anything."""
        return self.compile or self.channels_last

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        network = pl_module.network
        if not isinstance(network, nn.Module):
            raise TypeError(f"NetworkExecution converts pl_module.network, an nn.Module; got {type(network).__name__}")
        self.apply(network)

    def apply(self, network: nn.Module) -> nn.Module:
        """Convert ``network`` in place; idempotent (Lightning sets up every stage)."""
        if self.channels_last:
            network.to(memory_format=torch.channels_last)
        if self.compile and not is_compiled(network):
            network.compile()
        return network

    @staticmethod
    def release(network: nn.Module) -> nn.Module:
        """Undo :meth:`apply`: contiguous weights and the uncompiled forward, so a network handed on
        (a reference model) runs exactly as one loaded from its weights."""
        network.to(memory_format=torch.contiguous_format)
        # torch has no public "uncompile"; dropping the attribute nn.Module.compile sets is what
        # nn.Module.__getstate__ does when a compiled module is pickled or copied.
        network.__dict__.pop("_compiled_call_impl", None)
        return network


def is_compiled(network: nn.Module) -> bool:
    """Whether ``nn.Module.compile`` has compiled ``network``'s forward (it sets ``_compiled_call_impl``)."""
    return network.__dict__.get("_compiled_call_impl") is not None
