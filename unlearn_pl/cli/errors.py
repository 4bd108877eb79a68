"""One-line errors for the ``unlearn-pl`` command: the parser that prints a bad argument as one
line (condensed by :mod:`unlearn_pl.utils.errors`) and the exit that carries that line.
``JSONARGPARSE_DEBUG=true`` restores jsonargparse's full reports and tracebacks.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from unlearn_pl.utils.errors import USER_ERRORS, condense_parse_error, one_line_error, root_cause

__all__ = [
    "DEBUG_ENV",
    "USER_ERRORS",
    "CLIExit",
    "ConciseErrorParser",
    "condense_parse_error",
    "debugging",
    "one_line_error",
    "root_cause",
]

#: ``JSONARGPARSE_DEBUG=true`` shows full tracebacks instead of one-line errors; it is the
#: variable jsonargparse itself reads for the same purpose (values ``true``/``false``).
DEBUG_ENV = "JSONARGPARSE_DEBUG"


def debugging() -> bool:
    """Whether ``JSONARGPARSE_DEBUG=true`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").lower() == "true"


class CLIExit(SystemExit):
    """The CLI's exit after printing a one-line error (status 2); ``message`` keeps that line for
    a caller that runs the CLI in-process, as a study's trial does."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(code)
        self.message = message


class ConciseErrorParser(LightningArgumentParser):
    """Prints a parse error as one line instead of the usage (about 50 lines) and the nested
    explanation; ``JSONARGPARSE_DEBUG=true`` restores jsonargparse's full report."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or debugging():
            super().error(message, ex)
        # The program is `unlearn-pl` whether started as the console script or `python -m unlearn_pl`.
        words = ["unlearn-pl", *self.prog.replace(" [options]", "").split()[1:]]
        line = condense_parse_error(message)
        print(f"error: {line}  (see `{' '.join(words)} --help`)", file=sys.stderr)
        raise CLIExit(line)
