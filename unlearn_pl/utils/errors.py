"""One-line errors: the root cause of a chained exception and jsonargparse's nested parse error,
each condensed to the line a user needs (which argument, and why).

jsonargparse reports a bad value inside nested ``class_path`` blocks as an indented tree of every
union alternative that failed, and a constructor's own ``ValueError`` arrives wrapped in two
tracebacks. The command line (:mod:`unlearn_pl.cli.errors`) and a study's checks and trial records
print the same lines.
"""

from __future__ import annotations

#: Errors that name a bad argument or file; the CLI prints their message on one line.
USER_ERRORS = (ValueError, FileNotFoundError)


class DivergenceError(ValueError):
    """A network's weights hold NaN or infinity: its training diverged.

    A ``ValueError`` like every refused outcome, and a class of its own so that a study can tell a
    setting that diverges (a finding about that setting: too high a learning rate) from an error
    in the run (a bad value, a missing file) that someone must fix.
    """


def diverged(error: BaseException) -> bool:
    """Whether ``error``, or an exception it was raised from or while handling, is a :class:`DivergenceError`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, DivergenceError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a ``raise … from …`` chain: where jsonargparse wraps a
    constructor's ``ValueError`` in "Does not validate against any of the Union subtypes", this
    is the constructor's own message."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def one_line_error(error: BaseException) -> str:
    """``error``'s root cause as ``TypeName: first line of the message``."""
    cause = root_cause(error)
    message = str(cause)
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def condense_parse_error(message: str) -> str:
    """One line from jsonargparse's nested parse error: the key path and the innermost reason.

    jsonargparse explains a bad value inside ``class_path`` blocks as an indented tree (``Parser
    key "model": … Problem with given class_path … Parser key "width": Not of type
    PositiveFloat …``) followed by every union alternative that also failed. The deepest line is
    the reason; the ``Parser key`` lines above it, at decreasing indentation, are its path.
    """
    lines = [line for line in message.splitlines() if line.strip()]
    noise = ("Given value", "Subtypes:", "Errors:", "Does not validate", "- Expected a <class 'NoneType'>")

    def depth(line: str) -> int:
        return len(line) - len(line.lstrip())

    reasons = [i for i, line in enumerate(lines) if not line.strip().startswith(noise)]
    if not reasons:
        return lines[0].strip() if lines else message
    deepest = max(reasons, key=lambda i: (depth(lines[i]), -i))
    path: list[str] = []
    level = depth(lines[deepest])
    for line in reversed(lines[:deepest]):
        stripped = line.strip()
        if depth(line) < level and stripped.startswith("Parser key "):
            path.insert(0, stripped[len("Parser key ") :].rstrip(":").strip('"'))
            level = depth(line)
    reason = lines[deepest].strip().lstrip("- ").rstrip(":")
    return f"{' > '.join(path)}: {reason}" if path else reason
