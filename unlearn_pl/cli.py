"""The ``unlearn-pl`` command: Lightning's CLI over :class:`UnlearningModule` and its data module."""

from __future__ import annotations

import warnings

from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.references import check_lightning_checkpoint
from unlearn_pl.tuning.cli import TuneSubcommand  # `unlearn-pl tune` (validation-based tuning, SPEC §6)
from unlearn_pl.ulira_cli import UliraSubcommand  # `unlearn-pl ulira` (U-LiRA with shadow models)


class UnlearningCLI(UliraSubcommand, TuneSubcommand, LightningCLI):
    """``LightningCLI`` with the original/oracle preparation and a final evaluation.

    Before ``fit``/``validate``/``test`` it trains or loads the reference models (rank 0 before
    any process launch, so other processes find them cached); after ``fit`` it runs
    ``validate``, which prints and saves the results table.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": False})
        super().__init__(UnlearningModule, UnlearningDataModule, *args, **kwargs)

    def _prepare_subcommand_parser(self, klass, subcommand, **kwargs):  # type: ignore[no-untyped-def]
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand in ("validate", "test"):
            # Our RunReport prints one compact table; Lightning's would repeat every metric per loader.
            parser.set_defaults(verbose=False)
        if subcommand in ("fit", "validate", "test"):
            # --ckpt_path is loaded with torch.load(weights_only=True) whatever torch's default;
            # our checkpoints hold only tensors, numbers, strings and containers.
            parser.set_defaults(weights_only=True)
        return parser

    def _ckpt_file(self) -> str | None:
        """The ``--ckpt_path`` given as a file (not Lightning's keywords ``last``, ``best``…), if any."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or str(ckpt_path).split(":")[0] in ("last", "best", "hpc", "registry"):
            return None
        return str(ckpt_path)

    def _parse_ckpt_path(self) -> None:
        # Lightning reads --ckpt_path right after parsing; check it first, so a missing, corrupt or
        # foreign file gets a clear message instead of torch's advice to load it unsafely.
        if (path := self._ckpt_file()) is not None:
            check_lightning_checkpoint(path)
        super()._parse_ckpt_path()

    def _prepare(self) -> None:
        if (path := self._ckpt_file()) is not None:
            # A checkpoint of another network fails now, not after training the reference models.
            check_lightning_checkpoint(path, self.model.network)
        self.model.prepare_models(self.datamodule)

    before_fit = before_validate = before_test = _prepare

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        # The module's callbacks are attached again by validate(); drop the fit-time copies so
        # Lightning does not report them as "overridden".
        own = set(map(id, self.model.configure_callbacks()))
        self.trainer.callbacks = [c for c in self.trainer.callbacks if id(c) not in own]
        # Under ddp_spawn, fit ran in child processes: this process's SaveConfigCallback never
        # learnt that the config was saved, and would refuse to overwrite it in validate.
        for callback in self.trainer.callbacks:
            if isinstance(callback, SaveConfigCallback):
                callback.already_saved = True
        self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)


def main(args: list[str] | None = None) -> None:
    """Console-script entry point."""
    # A deprecation inside Lightning's own CombinedLoader; nothing a user can act on.
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    UnlearningCLI(args=args)


if __name__ == "__main__":
    main()
