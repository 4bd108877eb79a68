"""``SGDUnlearner``: the one place the unlearners' SGD hyperparameters are declared."""

from __future__ import annotations

import inspect
from typing import Any

from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.unlearners.base import Unlearner
from unlearn_pl.utils.arguments import (
    LearningRate,
    LRFraction,
    Momentum,
    WeightDecay,
    check_arguments,
)
from unlearn_pl.utils.optimizers import sgd_cosine


class SGDUnlearner(Unlearner):
    """An unlearner trained with SGD (momentum, weight decay) and a per-step cosine decay.

    The SGD fields are declared here only. Subclasses take ``**kwargs`` and pass them to
    ``super().__init__``; a subclass with other defaults names just those fields and forwards
    them, e.g. ``def __init__(self, lr: LearningRate = 1e-3, **kwargs): super().__init__(lr=lr,
    **kwargs)``. Each subclass's ``__init__`` is then given its complete signature (its own
    parameters, then the forwarded ones as keyword-only), so ``inspect.signature``, ``help()``,
    the tuner and jsonargparse all see every field with that subclass's defaults: the fields
    appear flat in ``--print_config`` and in YAML (``init_args.lr``). ``final_lr_fraction=1``
    keeps the learning rate constant, as the SalUn / Unlearn-Sparse baselines do.

    Args:
        lr: SGD learning rate (the peak of the cosine schedule).
        momentum: SGD momentum.
        weight_decay: SGD weight decay (only selected scalars are affected).
        final_lr_fraction: the per-step cosine schedule ends at this fraction of ``lr``
            (1.0 keeps it constant).
    """

    def __init__(
        self,
        lr: LearningRate = 0.01,
        momentum: Momentum = 0.9,
        weight_decay: WeightDecay = 5e-4,
        final_lr_fraction: LRFraction = 1.0,
    ) -> None:
        check_arguments(SGDUnlearner.__init__, locals())
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.final_lr_fraction = final_lr_fraction

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _complete_signature(cls)

    def configure_optimizers(self, module: UnlearningModel) -> OptimizerLRSchedulerConfig:
        return sgd_cosine(
            module.network.parameters(),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            final_lr_fraction=self.final_lr_fraction,
            total_steps=module.trainer.estimated_stepping_batches,
        )


def _complete_signature(cls: type) -> None:
    """Give ``cls.__init__`` the signature it accepts: its own parameters and those its ``**kwargs``
    forward to the next ``__init__`` in the MRO.

    ``inspect.signature`` (``help()``, the tuner's grid checks, IDEs) then lists every
    hyperparameter, while the SGD fields stay written once. jsonargparse reads the same
    signature, so the fields and each subclass's defaults still show in ``--print_config``.
    The parent's parameters keep their order as one block, placed where the subclass names the
    first of them (or after the subclass's own); from the first forwarded parameter on, the
    listed parameters are keyword-only, as they can only be passed by keyword through ``**kwargs``.
    """
    init = cls.__dict__.get("__init__")
    if init is None:
        return  # inherits an already complete __init__
    params = list(inspect.signature(init).parameters.values())
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    parent_init = next(base.__dict__["__init__"] for base in cls.__mro__[1:] if "__init__" in base.__dict__)
    self_param, *own = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    # eval_str: the parent's annotations are strings (postponed evaluation) naming its module's
    # imports; resolve them there, so the subclass's module need not import them.
    parent = [
        p
        for p in list(inspect.signature(parent_init, eval_str=True).parameters.values())[1:]
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    parent_names = {p.name for p in parent}
    overridden = {p.name: p for p in own if p.name in parent_names}
    first = next((i for i, p in enumerate(own) if p.name in parent_names), len(own))
    block = [overridden.get(p.name, p) for p in parent]
    ordered = own[:first] + block + [p for p in own[first:] if p.name not in parent_names]
    merged, keyword_only = [self_param], False
    for p in ordered:
        keyword_only = keyword_only or p.name not in overridden and p.name in parent_names
        merged.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if keyword_only else p)
    init.__signature__ = inspect.signature(init).replace(parameters=merged)
