"""The ``unlearn-pl`` command: Lightning's CLI over :class:`UnlearningModule` and its data module."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from unlearn_pl.cli.audit import AuditSubcommand  # `unlearn-pl audit` (challenge score and KLOM over seeds)
from unlearn_pl.cli.callbacks import list_only_trainer_callbacks, misplaced_callback
from unlearn_pl.cli.errors import DEBUG_ENV, USER_ERRORS, CLIExit, debugging, one_line_error
from unlearn_pl.cli.run_folder import reserve_versions, run_name
from unlearn_pl.cli.subcommands import CLISubcommands
from unlearn_pl.cli.tune import TuneSubcommand  # `unlearn-pl tune` (studies)
from unlearn_pl.cli.ulira import UliraSubcommand  # `unlearn-pl ulira` (U-LiRA with shadow models)
from unlearn_pl.cli.validated import ValidatedConfigParser, remember_validated_config
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.references import CheckedCheckpointIO, check_lightning_checkpoint


def run_cli(args: Sequence[str], run: bool = True, **kwargs: Any) -> UnlearningCLI:
    """Run ``unlearn-pl ARGS`` in this process and return the CLI object (its trainer and model):
    the trial runner of ``unlearn-pl tune`` (:class:`~unlearn_pl.tuning.TrialRunner`).

    With ``run=False``, ``ARGS`` has no subcommand and the CLI only builds the trainer, model and
    data module (``LightningCLI(run=False)``); ``kwargs`` go to the CLI class."""
    with warnings.catch_warnings():
        # LightningCLI warns when the process has command-line arguments of its own (the tuner's,
        # a notebook kernel's) besides `args`: these are complete.
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        return UnlearningCLI(args=list(args), run=run, **kwargs)


class UnlearningCLI(AuditSubcommand, UliraSubcommand, TuneSubcommand, CLISubcommands, LightningCLI):
    """``LightningCLI`` with the original/oracle preparation and a final evaluation.

    Before ``fit``/``validate``/``test`` it trains or loads the reference models (rank 0 before
    any process launch, so other processes find them cached); after ``fit`` it runs
    ``validate``, which prints and saves the results table.

    Differences from a plain ``LightningCLI``:

    - no ``--optimizer``/``--lr_scheduler`` arguments: the unlearner owns its optimizer and
      schedule (``--model.init_args.unlearner.init_args.lr`` …), and Lightning's automatic ones
      would silently replace them (``auto_configure_optimizers=False``);
    - ``--trainer.callbacks`` refuses localizers and unlearners (they are the model's
      ``--model.init_args.localizer``/``unlearner``), and its help does not list them;
    - ``validate``/``test`` need ``--ckpt_path``: without it the network holds the original
      weights, and the table would print them as the unlearned model;
    - a bad argument or file prints one line (``error: ValueError: …``) and exits with status 2;
      set ``JSONARGPARSE_DEBUG=true`` for the traceback.
    """

    trial_runner = staticmethod(run_cli)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": False})
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_class", ValidatedConfigParser)
        try:
            super().__init__(UnlearningModule, UnlearningDataModule, *args, **kwargs)
        except USER_ERRORS as e:
            if debugging():
                raise
            self._exit_with_error(one_line_error(e))

    @staticmethod
    def _exit_with_error(message: str, traceback_hint: bool = True) -> NoReturn:
        hint = f"  (set {DEBUG_ENV}=true for the traceback)" if traceback_hint else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        raise CLIExit(message)

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        list_only_trainer_callbacks(parser)

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # Parsing validated the whole config: the two dumps of every run need not validate it again.
        self._remember_validated_config()

    def _remember_validated_config(self) -> None:
        # Without a subcommand (run=False) Lightning builds no subcommand parsers.
        remember_validated_config(self.parser, self.config, getattr(self, "_subcommand_parsers", {}))

    def _prepare_subcommand_parser(self, klass, subcommand, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand in ("validate", "test"):
            # Our RunReport prints one compact table; Lightning's would repeat every metric per loader.
            parser.set_defaults(verbose=False)
        if subcommand in ("fit", "validate", "test"):
            # --ckpt_path is loaded with torch.load(weights_only=True) whatever torch's default;
            # our checkpoints hold only tensors, numbers, strings and containers.
            parser.set_defaults(weights_only=True)
        return parser

    def before_instantiate_classes(self) -> None:
        subcommand = self.config.get("subcommand")
        if subcommand and (message := misplaced_callback(self.config[subcommand].get("trainer.callbacks"))):
            self._exit_with_error(message, traceback_hint=False)
        config = self.config[subcommand] if subcommand else self.config
        logger = config.get("trainer.logger")
        init = logger.get("init_args") if hasattr(logger, "get") else None
        if init is not None and isinstance(init.get("name"), str) and "{" in init["name"]:
            init["name"] = run_name(init["name"], config.get("model"))
            # A string built from the class paths: valid for the logger's `name: str`.
            self._remember_validated_config()
        if subcommand in ("validate", "test") and not self.config[subcommand].get("ckpt_path"):
            # Checked before anything is built or trained: the answer does not depend on it.
            self._exit_with_error(
                f"`unlearn-pl {subcommand}` evaluates unlearned weights: pass --ckpt_path "
                "runs/<name>/version_<n>/checkpoints/<file>.ckpt (written by `unlearn-pl fit`). "
                "Without it the network holds the original model's weights. `unlearn-pl fit` "
                f"already {'validates' if subcommand == 'validate' else 'evaluates'} once it has unlearned.",
                traceback_hint=False,
            )

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
        if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            # --ckpt_path last/best/hpc is resolved inside fit: load it with the same checks as a file.
            self.trainer.strategy.checkpoint_io = CheckedCheckpointIO()
        self.model.prepare_models(self.datamodule)
        # After the reference models (a run that fails there leaves no empty folder), right
        # before Lightning's first write: two runs started at once never share version_N.
        reserve_versions(self.trainer.loggers)

    before_fit = before_validate = before_test = _prepare

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        # Under ddp_spawn, fit ran in child processes: this process's SaveConfigCallback never
        # learnt that the config was saved, and would refuse to overwrite it in validate.
        for callback in self.trainer.callbacks:  # type: ignore[attr-defined]  # Lightning's Trainer sets callbacks in its callback connector, undeclared
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
