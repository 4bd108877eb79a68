"""The ``unlearn-pl tune`` subcommand.

LightningCLI subcommands are ``Trainer`` methods: the CLI reads a method's signature for the
subcommand's arguments and calls it with the configured model and data module. So the tuning
command is :meth:`TuningTrainer.tune`, and :class:`TuneSubcommand` (a mixin of the CLI class)
registers it and makes ``TuningTrainer`` the CLI's trainer class. ``TuningTrainer`` is a plain
``Trainer`` otherwise, so ``fit``/``validate``/``test`` behave exactly as before.

A tuning config is a normal experiment config plus the ``tune`` arguments at the top level::

    unlearn-pl tune --config configs/tuning/privacy_digits.yaml
    unlearn-pl tune --config configs/tuning/privacy_digits.yaml --goal privacy_mia --lambdas "[0.5]"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.tuning.objective import Goal
from unlearn_pl.tuning.runner import TrainerSettings, TuningResult, tune


class TuningTrainer(pl.Trainer):
    """Lightning's ``Trainer`` with every setting unchanged, plus :meth:`tune` (``unlearn-pl tune``).

    It remembers its own construction arguments so that every tuning candidate gets a fresh
    trainer with the same settings (a trainer cannot be reused for a second, independent fit).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.tuning_settings = TrainerSettings(kwargs, trainer_class=pl.Trainer)
        super().__init__(**kwargs)

    def tune(
        self,
        model: UnlearningModule,
        datamodule: UnlearningDataModule,
        grid: dict[str, list[Any]],
        goal: Goal = "privacy",
        lambdas: list[float] | None = None,
        output_dir: str | None = None,
        progress: bool = True,
        seed: int = 0,
        unlearner_args: dict[str, Any] | None = None,
        extra_files: dict[str, str] | None = None,
    ) -> TuningResult:
        """Tune the unlearner's hyperparameters on validation data and report the choice per λ.

        Every grid candidate is trained by a fresh trainer with this trainer's settings (the
        grid's ``max_epochs`` overrides the configured one), then scored with
        J(λ) = (1−λ)·acc(val) + λ·goal. See :func:`unlearn_pl.tuning.runner.tune`.

        Args:
            model: the method to tune; its unlearner gives the class and base arguments.
            datamodule: the data (needs a validation set).
            grid: ``{argument: [values]}`` over the unlearner's constructor arguments and
                ``max_epochs``, e.g. ``{lr: [0.01, 0.1], max_epochs: [2, 5]}``.
            goal: ``privacy`` (1 − |err(F) − err(V)|), ``privacy_mia`` (1 − 2·|loss-attack
                accuracy − 0.5|) or ``bias`` (err(F) w.r.t. the training labels, for the
                ``Mislabeled`` selector).
            lambdas: the λ values (default: privacy 0.2/0.4/0.6, bias 0.15/0.3/0.5).
            output_dir: results go to a new ``<output_dir>/version_<n>`` folder (default
                ``<default_root_dir>/tuning``).
            progress: show a progress bar over candidates.
            seed: seeds every candidate's training identically (the CLI passes ``seed_everything``).
            unlearner_args: base unlearner arguments (default: read back from the model's unlearner).
            extra_files: more text files to save with the results (the CLI saves ``config.yaml``).
        """
        result = tune(
            model, datamodule, grid, goal=goal, lambdas=lambdas, trainer=self.tuning_settings,
            unlearner_args=unlearner_args, seed=seed,
            output_dir=output_dir if output_dir is not None else f"{self.default_root_dir}/tuning",
            extra_files=extra_files, progress=progress and self.is_global_zero,
        )
        if self.is_global_zero:
            print(f"\nchosen per lambda (goal {goal}; chosen on validation, test reported only):\n"
                  f"{result.summary()}\n\nresults: {result.output_dir}\n", flush=True)
        return result


def configured_unlearner_args(config: Any) -> dict[str, Any] | None:
    """The unlearner's ``init_args`` from a parsed (not instantiated) CLI config, if they are
    plain values; ``None`` when absent or when an argument is itself a configured object (then
    the runner reads the arguments back from the instantiated unlearner)."""
    node = config.get("model.init_args.unlearner") if hasattr(config, "get") else None
    init = node.get("init_args") if node is not None and hasattr(node, "get") else None
    if init is None:
        return None
    args = init.as_dict() if hasattr(init, "as_dict") else dict(init)

    def plain(v: Any) -> bool:
        if isinstance(v, Mapping):
            return "class_path" not in v and all(plain(x) for x in v.values())
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        return v is None or isinstance(v, (bool, int, float, str))

    return args if all(plain(v) for v in args.values()) else None


class TuneSubcommand:
    """Mixin for a ``LightningCLI`` subclass: adds the ``tune`` subcommand.

    Use it before ``LightningCLI`` in the bases (``class MyCLI(TuneSubcommand, LightningCLI)``).
    The CLI's trainer class defaults to :class:`TuningTrainer`; the arguments that the CLI
    provides itself (seed from ``seed_everything``, the unlearner's configured arguments, the
    config to save) are not command-line options.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("trainer_class", TuningTrainer)
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's subcommands plus ``tune`` (with the arguments the CLI fills in skipped)."""
        return {
            **LightningCLI.subcommands(),
            "tune": {"model", "datamodule", "seed", "unlearner_args", "extra_files"},
        }

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)  # type: ignore[misc]
        if subcommand == "tune":
            config = self.config["tune"]  # type: ignore[attr-defined]
            seed = config.get("seed_everything")
            kwargs["seed"] = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
            kwargs["unlearner_args"] = configured_unlearner_args(config)
            parser = self._parser("tune")  # type: ignore[attr-defined]
            kwargs["extra_files"] = {"config.yaml": parser.dump(config, skip_none=False)}
            rank_zero_info(f"Tuning with seed {kwargs['seed']}")
        return kwargs
