"""Deprecated: U-LiRA's shadow models moved to :mod:`unlearn_pl.ulira` (``unlearn_pl.ulira.shadow``
and ``unlearn_pl.ulira.design``). This alias keeps old imports working for one release."""

import warnings

from unlearn_pl.ulira.design import ShadowSpec, check_targets, pool_membership, shadow_datamodule
from unlearn_pl.ulira.shadow import ShadowTrial, build_bank, make_spec, open_bank, train_and_unlearn

warnings.warn(
    "unlearn_pl.shadow moved to unlearn_pl.ulira (unlearn_pl.ulira.shadow, unlearn_pl.ulira.design); "
    "this alias will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "ShadowSpec",
    "ShadowTrial",
    "build_bank",
    "check_targets",
    "make_spec",
    "open_bank",
    "pool_membership",
    "shadow_datamodule",
    "train_and_unlearn",
]
