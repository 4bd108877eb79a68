"""The ``unlearn-pl`` command: Lightning's CLI over :class:`~unlearn_pl.UnlearningModule` and its data,
with the subcommands ``tune`` (studies) and ``ulira`` (U-LiRA audits) besides ``fit``/``validate``/``test``."""

from unlearn_pl.cli.main import UnlearningCLI, main, run_cli

__all__ = ["UnlearningCLI", "main", "run_cli"]
