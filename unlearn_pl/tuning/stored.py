"""What a stored study holds a resumed or joined run to: its folder, its seeds and its base config.

A study's storage keeps the composed base config its trials ran; a run that brings another one is
refused (:func:`check_same_base`), so trials of two settings never mix. Code changes add
constructor arguments, and the parser writes their defaults into every resolved config: a key
that the stored config does not set (absent, or null) counts as unchanged when its new value is
what today's parser gives it when it is not set, its default.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from unlearn_pl.tuning.checks import quiet_lightning
from unlearn_pl.tuning.study import TrialRunner, stored_seed_choices
from unlearn_pl.utils.io import write_text

#: Resolves a config (YAML text) as today's parser does, every default filled in (YAML text).
Resolver = Callable[[str], str]

_UNSET = "(unset)"


def make_folder(folder: Path) -> Path:
    """Create the study folder, or raise ``ValueError`` saying why it cannot hold one."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(
            f"output_dir: {folder} cannot be a study folder: a file is in its way; give another "
            "output_dir or study_name"
        ) from None
    except OSError as e:
        raise ValueError(
            f"output_dir: cannot create the study folder {folder} ({e.strerror}); give another output_dir"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"output_dir: the study folder {folder} is not writable; give another output_dir")
    return folder


def check_seed_choices(study: optuna.Study, seeds: Sequence[int], search: str) -> list[int] | None:
    """The categorical seed choices the study's trials use (None: any seed), or ``ValueError``
    when ``seeds`` cannot be run in it: an open search samples from its fixed seed list, and a
    study begun before seeds could be added has one too."""
    stored = stored_seed_choices(study)
    if stored is None:
        return list(seeds) if search == "open" else None
    if (set(seeds) <= set(stored)) if search == "grid" else (set(seeds) == set(stored)):
        return stored
    raise ValueError(
        f"seeds {list(seeds)} cannot be run in study {study.study_name!r}: its trials draw seeds from the "
        f"fixed list {stored}, which Optuna cannot extend; keep seeds within {stored}, or give the new "
        "seeds another study_name"
    )


def resolver(runner: TrialRunner) -> Resolver:
    """A :data:`Resolver` built on a study's trial runner: the config parsed (``run=False``) and dumped."""

    def resolve(config: str) -> str:
        with tempfile.TemporaryDirectory(prefix="unlearn_pl-stored-") as scratch, quiet_lightning():
            path = write_text(Path(scratch) / "stored.yaml", config)
            cli = runner(["--config", str(path)], run=False, parser_kwargs={"exit_on_error": False})
            return str(cli.parser.dump(cli.config, skip_none=False, skip_validation=True))

    return resolve


def check_same_base(study: optuna.Study, base_config: str, resolve: Resolver | None = None, shown: int = 5) -> None:
    """Record ``base_config`` (YAML text) in ``study`` or, when it already holds one, check it sets
    the same values (layout and comments aside); else raise ``ValueError`` naming up to ``shown``
    changed keys.

    With ``resolve``, a key the stored config leaves unset (absent or null) counts as unchanged
    when its new value is its default: the value ``resolve`` gives it in the stored config with
    that key left out. Without ``resolve`` every key counts.
    """
    stored = study.user_attrs.get("base_config")
    if stored is None:
        study.set_user_attr("base_config", base_config)
        return
    old_config = yaml.safe_load(stored)
    old, new = dotted(old_config), dotted(yaml.safe_load(base_config))
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k, _UNSET) != new.get(k, _UNSET)]
    unset = [k for k in changed if old.get(k) is None]
    if unset and resolve is not None:
        defaults = _defaults(old_config, unset, resolve)
        changed = [k for k in changed if k not in unset or defaults.get(k, _UNSET) != new.get(k, _UNSET)]
    if not changed:
        return
    listed = [f"{k}: {old.get(k, _UNSET)} → {new.get(k, _UNSET)}" for k in changed]
    raise ValueError(
        f"study {study.study_name!r} in this storage ran another base config ("
        + "; ".join(listed[:shown])
        + ("; …" if len(listed) > shown else "")
        + "), and its trials would mix two settings; give another study name or restore the config"
    )


def _defaults(config: Any, keys: Sequence[str], resolve: Resolver) -> dict[str, Any]:
    """``{dotted key: value}`` of ``config`` resolved with ``keys`` left out; empty when today's
    parser refuses the stored config (then every key counts)."""
    try:
        return dotted(yaml.safe_load(resolve(yaml.safe_dump(without(config, keys)))))
    except (Exception, SystemExit):  # a stored config today's parser refuses: compare it as written
        return {}


def dotted(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{dotted key: leaf value}`` (a list or an empty mapping is a leaf)."""
    if isinstance(config, Mapping) and config:
        return {k: v for key, value in config.items() for k, v in dotted(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): config}


def without(config: Any, keys: Sequence[str]) -> Any:
    """A copy of the nested ``config`` with the dotted ``keys`` removed (a missing key is skipped)."""
    if not isinstance(config, Mapping):
        return config
    drop = set(keys)
    out = {}
    for key, value in config.items():
        if key in drop:
            continue
        inner = [k.removeprefix(f"{key}.") for k in drop if k.startswith(f"{key}.")]
        out[key] = without(value, inner) if inner else value
    return out
