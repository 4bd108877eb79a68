"""One way to add a subcommand to a ``LightningCLI``: a method of the CLI class of that name.

Lightning's own subcommands (``fit``, ``validate``…) are ``Trainer`` methods: the CLI reads their
arguments from the method's signature and calls the trainer's method. A study or an audit is not
a training loop, and it needs the parsed config, so ``tune`` and ``ulira`` are methods of the CLI
(each in a mixin that also extends :meth:`~lightning.pytorch.cli.LightningCLI.subcommands`). This
mixin makes Lightning read and call them there: the two places where Lightning looks a
subcommand up on the trainer (``_add_subcommands`` and ``_run_subcommand``) are extended, and
nothing else changes.

Example::

    class HelloSubcommand:
        @classmethod
        def subcommands(cls):
            return {**super().subcommands(), "hello": {"model", "datamodule"}}

        def hello(self, model, datamodule, name: str = "world"):
            \"\"\"Say hello.\"\"\"
            print(f"hello {name}")

    class MyCLI(HelloSubcommand, CLISubcommands, LightningCLI): ...
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lightning.pytorch.cli import LightningCLI, class_from_function

if TYPE_CHECKING:
    # The base of the subcommand mixins: for the type checker a ``LightningCLI``, whose attributes
    # (``config``, ``trainer``, ``_parser``…) the mixins use and whose methods they extend; at run
    # time a plain mixin, placed before ``LightningCLI`` in a CLI class's bases.
    LightningCLIMixin = LightningCLI
else:
    LightningCLIMixin = object


def configured_run(cli: LightningCLI, subcommand: str, own_arguments: Iterable[str]) -> str:
    """The run a subcommand was configured with (its model, data and trainer) as YAML: the
    subcommand's parsed config without its own arguments and ``config``, defaults written out."""
    config = cli.config[subcommand].clone()
    for key in [*own_arguments, "config"]:
        if key in config:
            del config[key]
    return cli._parser(subcommand).dump(config, skip_none=False, skip_validation=True)


class CLISubcommands(LightningCLIMixin):
    """Mixin for a ``LightningCLI`` subclass whose extra subcommands are methods of its own.

    When the arguments start with a subcommand's name (``fit …``, as every study trial's do), only
    that subcommand's parser is built: each one reads the signatures of the trainer, model and data
    classes, and building all seven for one ``fit`` took about a third of a small trial's parsing.
    Without one (``--help``, a misspelt name) every subcommand is built, so the help and the error
    list them all.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = kwargs.get("args")
        self._given_args = sys.argv[1:] if given is None else given
        super().__init__(*args, **kwargs)

    def _requested_subcommands(self) -> list[str]:
        """The subcommand the arguments name first, alone, or else every subcommand."""
        given = self._given_args
        first = given[0] if isinstance(given, (list, tuple)) and given else None
        names = list(self.subcommands())
        return [first] if isinstance(first, str) and first in names else names

    def _owner(self, name: str) -> type:
        """Where the method of subcommand ``name`` is: this CLI's class if it defines one (and it is
        not one of Lightning's), else the trainer's class."""
        if name not in LightningCLI.subcommands() and callable(getattr(type(self), name, None)):
            return type(self)
        trainer_class = self.trainer_class
        return trainer_class if isinstance(trainer_class, type) else class_from_function(trainer_class)

    def _add_subcommands(self, parser: Any, **kwargs: Any) -> None:
        # Lightning's _add_subcommands, with each method looked up on its owner.
        self._subcommand_parsers = {}
        subcommands = parser.add_subcommands()
        for name in self._requested_subcommands():
            owner = self._owner(name)
            doc = getattr(owner, name).__doc__
            description = doc.strip().splitlines()[0] if doc else ""
            # LightningCLI's own (private) builder of a subcommand's parser; this mixin sits on it.
            subparser = self._prepare_subcommand_parser(
                owner, name, **{"description": description, **kwargs.get(name, {})}
            )
            self._subcommand_parsers[name] = subparser
            subcommands.add_subcommand(name, subparser, help=description)

    def _run_subcommand(self, subcommand: str) -> None:
        if self._owner(subcommand) is not type(self):
            super()._run_subcommand(subcommand)
            return
        getattr(self, subcommand)(**self._prepare_subcommand_kwargs(subcommand))
