"""The GPUs a subcommand's trials take, read from its parsed config, so that the study engine can
give each worker process its own (:mod:`unlearn_pl.tuning.engine.devices`)."""

from __future__ import annotations

from typing import Any

from unlearn_pl.tuning.engine import trial_gpus


def config_gpus(config: Any, model: Any) -> int:
    """GPUs one trial of ``config`` trains on: the most of the Trainer's (``trainer.accelerator`` and
    ``trainer.devices``, Lightning's defaults ``auto``) and of the reference recipe's, which trains
    the original and oracle models (or U-LiRA's shadow models) inside the trial. 0: CPU trials."""
    trainer = config.get("trainer") or {}
    recipe = getattr(getattr(model, "references", None), "recipe", None)
    accelerator, devices = trainer.get("accelerator"), trainer.get("devices")
    trainings = [("auto" if accelerator is None else accelerator, "auto" if devices is None else devices)]
    if recipe is not None:
        trainings.append((recipe.accelerator, recipe.devices))
    return trial_gpus(*trainings)
