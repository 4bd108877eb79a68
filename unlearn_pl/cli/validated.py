"""Serializing a config the CLI has just validated without validating it a second and third time.

``LightningCLI`` serializes the parsed config twice in every run: once for the model's and data
module's hyperparameters (what a checkpoint records to rebuild them), once for ``config.yaml``
(:class:`~lightning.pytorch.cli.SaveConfigCallback`). jsonargparse's ``dump`` validates the whole
config each time, although parsing has just validated it: about 0.1 s of a run, an eighth of a
small study trial on digits. The parser here keeps a copy of the config it validated, and a dump
of an *equal* config skips the repeated validation; any other config, or one changed since, is
validated as jsonargparse always does.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import Namespace

from unlearn_pl.cli.errors import ConciseErrorParser


class ValidatedConfigParser(ConciseErrorParser):
    """The ``unlearn-pl`` parser: one-line errors (:class:`ConciseErrorParser`), and no second
    validation when dumping the config it was told is valid (:meth:`remember_valid`)."""

    validated: Namespace | None = None

    def remember_valid(self, config: Namespace) -> None:
        """Record a copy of ``config``, which this parser (or its parent) has validated."""
        self.validated = config.clone()

    def dump(self, namespace: Namespace, *args: Any, **kwargs: Any) -> str:
        return super().dump(namespace, *args, **self._skip_if_validated(namespace, kwargs))

    def save(self, namespace: Namespace, *args: Any, **kwargs: Any) -> None:
        super().save(namespace, *args, **self._skip_if_validated(namespace, kwargs))

    def _skip_if_validated(self, namespace: Namespace, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Equality is checked on the whole config, so a value changed after validation (by a hook,
        # or by hand) is validated again. A caller's own skip_validation (or skip_check) is kept.
        if self.validated is not None and "skip_check" not in kwargs and namespace == self.validated:
            kwargs.setdefault("skip_validation", True)
        return kwargs


def remember_validated_config(parser: Any, config: Namespace, subcommand_parsers: dict[str, Any]) -> None:
    """After a parse: ``parser`` and the parser of the subcommand run (if any) remember the config
    (the subcommand's part of it for the latter) as validated."""
    if isinstance(parser, ValidatedConfigParser):
        parser.remember_valid(config)
    subcommand = config.get("subcommand")
    subparser = subcommand_parsers.get(subcommand) if subcommand else None
    if isinstance(subparser, ValidatedConfigParser):
        subparser.remember_valid(config[subcommand])
