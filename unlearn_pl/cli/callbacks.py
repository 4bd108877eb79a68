"""Keeps localizers and unlearners out of ``--trainer.callbacks``.

Localizers and unlearners are Lightning callbacks, but the :class:`~unlearn_pl.UnlearningModule`
owns them: it receives them as ``--model.init_args.localizer``/``unlearner`` and returns them from
``configure_callbacks``. Given to the trainer instead, Lightning would replace them by the
module's own (with a warning), so the run would silently use another localizer or unlearner.

jsonargparse lists every imported concrete subclass of ``Callback`` as a known subclass of
``--trainer.callbacks`` and offers no setting to leave some out; :func:`list_only_trainer_callbacks`
narrows that list in the help, and :func:`misplaced_callback` names the argument such a class
belongs to, for a one-line refusal.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pkgutil import resolve_name
from typing import Any

from unlearn_pl.localizers.base import Localizer
from unlearn_pl.unlearners.base import Unlearner

#: Module parts that are callbacks but not trainer callbacks: (base class, kind, argument).
_MODULE_PARTS: tuple[tuple[type, str, str], ...] = (
    (Localizer, "a localizer", "--model.init_args.localizer"),
    (Unlearner, "an unlearner", "--model.init_args.unlearner"),
)
#: How jsonargparse's help introduces the candidate classes of a class-typed argument.
_KNOWN = ", known subclasses: "


def _module_part(class_path: str) -> tuple[str, str] | None:
    """``(kind, argument)`` if ``class_path`` names a localizer or an unlearner, else ``None``."""
    try:
        cls = resolve_name(class_path)
    except (ImportError, AttributeError, ValueError):
        return None  # not importable: jsonargparse reports it
    for base, kind, argument in _MODULE_PARTS:
        if isinstance(cls, type) and issubclass(cls, base):
            return kind, argument
    return None


def _narrowed_help(extra_help: Callable[[], str]) -> str:
    """``extra_help()`` without the localizers and unlearners in its list of known subclasses."""
    text = extra_help()
    if not text.startswith(_KNOWN):
        return text
    paths = [p for p in text[len(_KNOWN) :].split(", ") if _module_part(p) is None]
    return _KNOWN + ", ".join(paths) if paths else ""


def list_only_trainer_callbacks(parser: argparse.ArgumentParser) -> None:
    """Leave localizers and unlearners out of the classes ``--help`` lists for ``--trainer.callbacks``.

    The argument still accepts any ``Callback``; :func:`misplaced_callback` refuses these ones.
    """
    for action in parser._actions:
        if action.dest == "trainer.callbacks" and hasattr(action, "extra_help"):
            # jsonargparse's ActionTypeHint appends ", known subclasses: …" to the help with this method.
            # A partial of a module-level function, not a closure: ddp_spawn pickles the trainer,
            # and with it this parser.
            action.extra_help = partial(_narrowed_help, action.extra_help)


def misplaced_callback(callbacks: Any) -> str | None:
    """A one-line message if the parsed ``trainer.callbacks`` value holds a localizer or an unlearner.

    Args:
        callbacks: the parsed value: ``None``, one ``{class_path, init_args}`` namespace or a list of them.
    """
    if callbacks is None:
        return None
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        class_path = callback.get("class_path") if hasattr(callback, "get") else None
        if isinstance(class_path, str) and (part := _module_part(class_path)) is not None:
            kind, argument = part
            return (
                f"--trainer.callbacks got {class_path}, {kind}: pass it as {argument} "
                "(the model runs its localizer and unlearner as its own callbacks)"
            )
    return None
