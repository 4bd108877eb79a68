"""What a stored study holds a resumed or joined run to: its folder, its seeds, its base config and
its candidates; and which studies may lend completed trials to another.

A study's storage keeps the composed base config its trials ran and each candidate's settings; a
run that brings other ones is refused (:func:`check_same_base`, :func:`check_same_candidates`), so
trials of two settings never mix. A base value that every candidate overrides is one no trial ran
with (a grid over ``trainer.max_epochs`` makes the base's epochs moot), so changing it is not a
change. A study that lends trials to a larger grid is held to the same
(:func:`check_lender`). Code changes add
constructor arguments, and the parser writes their defaults into every resolved config: a key
that the stored config does not set (absent, or null) counts as unchanged when its new value is
what today's parser gives it when it is not set, its default.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from unlearn_pl.tuning.checks import quiet_lightning
from unlearn_pl.tuning.engine import journal_storage
from unlearn_pl.tuning.space import Candidate
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


def set_by_every_candidate(candidates: Sequence[Candidate]) -> frozenset[str]:
    """The dotted leaf keys that every one of ``candidates`` sets (none without candidates). A
    mapping a candidate sets (``model.init_args.localizer: {class_path: …, init_args: {budget: 0.1}}``)
    sets the leaves it names (``….init_args.budget``), not the base's other keys under it: the
    parser may merge those in."""
    keys = [frozenset(leaf for k, v in c.overrides for leaf in dotted(v, f"{k}.")) for c in candidates]
    return frozenset.intersection(*keys) if keys else frozenset()


def base_changes(
    stored: str, base_config: str, resolve: Resolver | None = None, overridden: Collection[str] = ()
) -> list[str]:
    """``key: old → new`` for each value ``base_config`` (YAML text) sets otherwise than ``stored``
    (layout and comments aside), leaving out the ``overridden`` keys (those every candidate sets:
    no trial runs their base value). With ``resolve``, a key ``stored`` leaves unset (absent or
    null) counts as unchanged when its new value is its default: the value ``resolve`` gives it in
    the stored config with that key left out. Without ``resolve`` every key counts."""
    old_config = yaml.safe_load(stored)
    old, new = dotted(old_config), dotted(yaml.safe_load(base_config))
    changed = [
        k for k in sorted(old.keys() | new.keys()) if k not in overridden and old.get(k, _UNSET) != new.get(k, _UNSET)
    ]
    unset = [k for k in changed if old.get(k) is None]
    if unset and resolve is not None:
        defaults = _defaults(old_config, unset, resolve)
        changed = [k for k in changed if k not in unset or defaults.get(k, _UNSET) != new.get(k, _UNSET)]
    return [f"{k}: {old.get(k, _UNSET)} → {new.get(k, _UNSET)}" for k in changed]


def _listed(changes: Sequence[str], shown: int) -> str:
    return "; ".join(changes[:shown]) + ("; …" if len(changes) > shown else "")


def check_same_base(
    study: optuna.Study,
    base_config: str,
    resolve: Resolver | None = None,
    shown: int = 5,
    candidates: Sequence[Candidate] = (),
) -> None:
    """Record ``base_config`` (YAML text) in ``study`` or, when it already holds one, check it sets
    the same values (:func:`base_changes`) except where every one of ``candidates`` overrides the
    key; else raise ``ValueError`` naming up to ``shown`` changed keys. The stored config stays the
    one the study began with."""
    stored = study.user_attrs.get("base_config")
    if stored is None:
        study.set_user_attr("base_config", base_config)
        return
    if changes := base_changes(stored, base_config, resolve, set_by_every_candidate(candidates)):
        raise ValueError(
            f"study {study.study_name!r} in this storage ran another base config ({_listed(changes, shown)}), "
            "and its trials would mix two settings; give another study name or restore the config"
        )


def candidate_settings(candidates: Sequence[Candidate]) -> dict[str, str]:
    """``{candidate name: its overrides as canonical JSON}``: what each name stands for."""
    return {c.name: json.dumps([[k, v] for k, v in c.overrides], sort_keys=True, default=str) for c in candidates}


def _changed_candidates(recorded: Mapping[str, str] | None, settings: Mapping[str, str]) -> list[str]:
    """The names in both ``recorded`` and ``settings`` whose settings differ."""
    recorded = recorded or {}
    return [n for n, s in settings.items() if n in recorded and recorded[n] != s]


def check_same_candidates(study: optuna.Study, candidates: Sequence[Candidate]) -> None:
    """Check that a resumed ``study`` has the same candidates, in the same order, each with the
    settings it ran (a study records them from its first run), then record them; else raise
    ``ValueError``: Optuna cannot add choices to the candidate parameter, and a candidate whose
    settings changed under the same name would mix two settings in one cell."""
    names, settings = [c.name for c in candidates], candidate_settings(candidates)
    attrs = study.user_attrs  # one read: each is a storage call returning every attribute
    stored = attrs.get("candidates", names)
    if stored != names:
        raise ValueError(
            f"study {study.study_name!r} in this storage has another search space ({len(stored)} candidates, "
            f"now {len(names)}); give another study name (reuse: [{study.study_name!r}] starts it from this "
            "study's completed trials)"
        )
    if changed := _changed_candidates(attrs.get("candidate_settings"), settings):
        raise ValueError(
            f"study {study.study_name!r} in this storage ran candidate {changed[0]!r} with other settings "
            f"({len(changed)} candidates changed); give another study name or restore the study's space"
        )
    # Written only when new: a journal keeps every write, and studies are resumed often.
    for key, value in (("candidates", names), ("candidate_settings", settings)):
        if attrs.get(key) != value:
            study.set_user_attr(key, value)


def lender_study(name: str, storage: optuna.storages.BaseStorage | None, output_dir: Path) -> optuna.Study:
    """The study ``name`` to copy completed trials from: in ``storage`` when the study has one given,
    else in the journal of ``<output_dir>/<name>``; ``ValueError`` when there is none."""
    if storage is None:
        path = output_dir / name / "study.log"
        if not path.is_file():
            raise ValueError(f"reuse: no study {name!r} to copy trials from: {path} does not exist")
        storage = journal_storage(path)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise ValueError(f"reuse: no study {name!r} in the storage to copy trials from") from None


def check_lender(
    source: optuna.Study, base_config: str | None, candidates: Sequence[Candidate], resolve: Resolver | None = None
) -> None:
    """Refuse ``source`` as a study to copy completed trials from (``ValueError``, naming what
    differs) unless it ran the same base config (keys every one of ``candidates`` sets aside) and
    recorded, for each candidate both studies name, the same settings."""
    name, attrs = source.study_name, source.user_attrs
    if base_config is None or attrs.get("base_config") is None:
        raise ValueError(f"reuse: study {name!r} can lend trials only to a study run from a composed base config")
    if changes := base_changes(attrs["base_config"], base_config, resolve, set_by_every_candidate(candidates)):
        raise ValueError(
            f"reuse: study {name!r} ran another base config ({_listed(changes, 5)}); its trials cannot be copied"
        )
    if "candidate_settings" not in attrs:
        raise ValueError(
            f"reuse: study {name!r} records no candidate settings to compare; resume it once with its own "
            "configs (that records them), then reuse it"
        )
    if changed := _changed_candidates(attrs["candidate_settings"], candidate_settings(candidates)):
        raise ValueError(
            f"reuse: study {name!r} ran candidate {changed[0]!r} with other settings ({len(changed)} candidates "
            "differ); its trials cannot be copied"
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
