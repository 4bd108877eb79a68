"""The ``unlearn-pl audit`` subcommand: per-example audits of unlearning methods over model seeds.

For every model seed and method, a trial runs the configured unlearning (as ``unlearn-pl fit``
would with that seed) and records the per-example outputs of the unlearned model, its original
and its oracle (:mod:`unlearn_pl.audit`); then every method gets the NeurIPS 2023 unlearning
challenge's forgetting quality F and final score, the ε histogram and KLOM's forget, retain and
validation distributions, each with a bootstrap interval over the seeds::

    unlearn-pl audit --config configs/audit/digits.yaml --workers 2
    unlearn-pl audit --config configs/ulira/digits.yaml --seeds 16 \\
        --methods "[configs/methods/retrain.yaml, configs/methods/scrub.yaml]"

- **Seeds** vary the models, never the data: a seed sets the ``seed_keys`` (default
  ``seed_everything``, hence the initial weights, and the reference recipe's seed, hence the
  originals' and oracles' data order); the data's seed stays the config's. A configuration whose
  split changes with a seed key is refused, naming the key. ``--seeds 32`` means seeds 0 … 31.
- **Methods** are the configured run plus each ``--methods`` file, a partial config composed after
  the configs as in ``fit`` (``configs/methods/*.yaml``), except that a file naming another
  localizer or unlearner class starts that part afresh (nothing of the configured class's
  settings carries over). Each method is named by its classes, ``<localizer>-<unlearner>``
  (``@<file stem>`` added when two methods share them).
- **Resuming**: the audit folder (default ``<default_root_dir>/audits/<fingerprint>``) keeps each
  trial's outputs; the same command again runs only the missing trials, failed ones included, and
  more seeds add trials. Workers on other machines that see the same folder join with
  ``--storage URL --study_name NAME --folder FOLDER``.

It prints a short table and ``results: <folder>``, and exits with status 1 and one line when
trials failed.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml
from jsonargparse.typing import Path_fr

from unlearn_pl.audit import ORIGINAL, AuditPlan, AuditStore, MethodAudit, audit_methods, check_fixed_split
from unlearn_pl.audit.plan import seed_overrides
from unlearn_pl.audit.report import INTERVAL, summary_table, write_report
from unlearn_pl.audit.trial import AuditTrial, BuiltRun, run_audit_trials
from unlearn_pl.cli.subcommands import LightningCLIMixin, configured_run
from unlearn_pl.cli.workers import config_gpus
from unlearn_pl.tuning.engine.devices import resolve_workers
from unlearn_pl.ulira.design import shadow_trainer_kwargs
from unlearn_pl.utils.arguments import IntAtLeastTwo, PositiveInt, WorkerCount
from unlearn_pl.utils.describe import content_hash

#: The dotted keys a seed sets by default: the model seeds, never the data's.
MODEL_SEED_KEYS: tuple[str, ...] = ("seed_everything", "model.init_args.references.init_args.recipe.seed")

#: The parts a method file may replace by naming another class.
METHOD_PARTS: tuple[str, ...] = ("localizer", "unlearner")


def build_run(cli_class: type, args: list[str]) -> BuiltRun:
    """Build (not run) ``unlearn-pl fit ARGS`` with ``cli_class``; a bad config raises ``ValueError``
    with the CLI's one-line message instead of exiting."""
    captured = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
        # LightningCLI warns when the process has command-line arguments besides `args`: these are complete.
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        try:
            cli = cli_class(args=list(args), run=False, save_config_callback=None)
        except SystemExit as e:
            message = captured.getvalue().strip().splitlines()
            raise ValueError(
                message[-1] if message else f"the config {args} could not be built (exit {e.code})"
            ) from None
    text = cli.parser.dump(cli.config, skip_none=False, skip_validation=True)
    return BuiltRun(cli.model, cli.datamodule, shadow_trainer_kwargs(cli.config["trainer"]), text)


def _class_path(document: Any, part: str) -> str | None:
    block = ((document or {}).get("model") or {}).get("init_args", {}) or {}
    value = block.get(part) if isinstance(block, dict) else None
    return value if isinstance(value, str) else value.get("class_path") if isinstance(value, dict) else None


def class_resets(method_file: str, base_config: str) -> list[str]:
    """``--model.init_args.<part>=null`` for each part of :data:`METHOD_PARTS` whose class the
    method file changes, so jsonargparse does not carry the configured class's settings over."""
    method, base = yaml.safe_load(Path(method_file).read_text()), yaml.safe_load(base_config)
    resets = []
    for part in METHOD_PARTS:
        new = _class_path(method, part)
        if new is not None and new.rsplit(".", 1)[-1] != (_class_path(base, part) or "").rsplit(".", 1)[-1]:
            resets.append(f"--model.init_args.{part}=null")
    return resets


def method_name(run: BuiltRun) -> str:
    """``<localizer>-<unlearner>`` of the run's classes."""
    return f"{type(run.module.localizer).__name__}-{type(run.module.unlearner).__name__}"


def check_auditable(run: BuiltRun, what: str) -> None:
    """Raise ``ValueError`` when ``what`` cannot be audited: no unlearner, or no oracle per seed."""
    if run.module.unlearner is None:
        raise ValueError(f"{what} configures no unlearner (model.init_args.unlearner); an audit unlearns")
    oracle = run.module.references.oracle
    if oracle is not True:
        raise ValueError(
            f"{what} has references.oracle={oracle!r}: an audit compares the unlearned models with one oracle per "
            "seed, retrained from that seed's initial weights; set model.init_args.references.init_args.oracle: true"
        )


class AuditSubcommand(LightningCLIMixin):
    """Mixin for :class:`~unlearn_pl.cli.subcommands.CLISubcommands` CLIs: adds the ``audit`` subcommand."""

    @classmethod
    def subcommands(cls) -> dict[str, set[str]]:
        """The next class's subcommands plus ``audit`` (``model``/``datamodule`` come from the config)."""
        return {**super().subcommands(), "audit": {"model", "datamodule"}}

    def audit(
        self,
        model: Any,
        datamodule: Any,
        seeds: list[int] | IntAtLeastTwo = 8,
        methods: list[Path_fr] | None = None,
        workers: WorkerCount = 1,
        seed_keys: list[str] | None = None,
        retain_sample: PositiveInt = 1000,
        val_sample: PositiveInt = 1000,
        n_resamples: PositiveInt = 200,
        folder: str | None = None,
        storage: str | None = None,
        study_name: str | None = None,
    ) -> dict[str, MethodAudit]:
        """Audit the configured run and the listed methods over model seeds (F, score, ε histogram, KLOM).

        Args:
            model: unused (each trial builds its run from the config), as ``datamodule``.
            datamodule: unused.
            seeds: the model seeds, a list, or N for seeds 0 … N−1 (at least 2).
            methods: partial config files of further methods, composed after the configs.
            workers: processes on this machine, or ``auto`` (one per GPU, else per core), for the trials (each
                with its own GPUs and ``cores // workers`` torch threads) and the report.
            seed_keys: the dotted keys a seed sets (default: ``seed_everything`` and the reference
                recipe's seed); keys that change the split are refused.
            retain_sample: retain examples recorded for KLOM (a fixed sample; all if fewer).
            val_sample: validation examples recorded for KLOM.
            n_resamples: bootstrap resamples of every interval.
            folder: the audit folder (default ``<default_root_dir>/audits/<fingerprint>``).
            storage: an Optuna RDB URL shared with other machines (default: a journal file in the folder).
            study_name: the study's name (default: derived from the methods and seeds).
        """
        seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
        if len(seed_list) < 2 or len(set(seed_list)) != len(seed_list):
            raise ValueError(f"seeds must name at least 2 distinct seeds (or be N >= 2); got {seeds!r}")
        keys = list(seed_keys) if seed_keys is not None else list(MODEL_SEED_KEYS)
        if not keys or any(not isinstance(k, str) or not k for k in keys):
            raise ValueError(f"seed_keys must be a non-empty list of dotted keys; got {seed_keys!r}")
        build = functools.partial(build_run, type(self))
        with tempfile.TemporaryDirectory() as tmp:
            base_file = Path(tmp) / "base.yaml"
            base_file.write_text(configured_run(self, "audit", AUDIT_ARGS))
            runs = self._audit_methods(build, str(base_file), [os.fspath(m) for m in methods or []])
            plan = AuditPlan.draw(runs[0][1].datamodule, int(retain_sample), int(val_sample))
            for source, run in runs:
                check_auditable(run, source)
                plan.check(run.datamodule, source)
            check_fixed_split(
                lambda values: build(
                    ["--config", str(base_file), *seed_overrides(keys, values)]
                ).datamodule.split_fingerprint(),
                keys,
                seed_list,
            )
        names = self._audit_names(runs)
        configs = {name: run.config for name, (_, run) in zip(names, runs, strict=True)}
        fingerprint = content_hash([configs, keys, plan.to_dict()])
        root = folder or str(Path(self.trainer.default_root_dir) / "audits" / fingerprint)
        store = AuditStore(root)
        classes = {
            name: {"localizer": type(run.module.localizer).__name__, "unlearner": type(run.module.unlearner).__name__}
            for name, (_, run) in zip(names, runs, strict=True)
        }
        settings = {"fingerprint": fingerprint, "methods": classes, "seed_keys": keys, "plan": plan.to_dict()}
        store.create(settings, configs)
        gpus = config_gpus(self.config["audit"], model)
        processes = resolve_workers(workers, gpus)
        objective = AuditTrial(build, root, {n: str(store.config_file(n)) for n in names}, seed_list, keys)
        failed = run_audit_trials(
            objective,
            workers=processes,
            gpus_per_trial=gpus,
            storage=self._audit_storage(storage, root),
            study_name=study_name or f"audit-{fingerprint}-{content_hash([names, seed_list])}",
        )
        if failed:
            print(
                f"error: {len(failed)} of {len(names) * len(seed_list)} audit trials failed (e.g. {failed[0]}); "
                f"run the same command again to retry them (results: {root})",
                file=sys.stderr,
            )
            raise SystemExit(1)
        audits = audit_methods(store, names, seed_list, int(n_resamples), processes)
        write_report(
            Path(root),
            audits,
            {ORIGINAL: {"localizer": "-", "unlearner": "before unlearning"}, **classes},
            settings,
            seed_list,
        )
        print(
            f"\nAudit over {len(seed_list)} model seeds; intervals: {INTERVAL}.\n{summary_table(audits)}\n\nresults: {root}\n",
            flush=True,
        )
        return audits

    @staticmethod
    def _audit_methods(build: Any, base_file: str, method_files: list[str]) -> list[tuple[str, BuiltRun]]:
        """``(source, run)`` of the configured run and of each method file composed after it."""
        base = build(["--config", base_file])
        runs = [("the configured run", base)]
        for path in method_files:
            runs.append(
                (f"method {path}", build(["--config", base_file, *class_resets(path, base.config), "--config", path]))
            )
        return runs

    @staticmethod
    def _audit_names(runs: list[tuple[str, BuiltRun]]) -> list[str]:
        names: list[str] = []
        for source, run in runs:
            name = method_name(run)
            if name in names:
                name = f"{name}@{Path(source.removeprefix('method ')).stem}"
            if name in names:
                raise ValueError(f"{source} is named {name!r} like another method; give its file another name")
            names.append(name)
        return names

    @staticmethod
    def _audit_storage(storage: str | None, root: str) -> Any:
        from unlearn_pl.tuning.engine import journal_storage

        if storage is None:
            return journal_storage(Path(root) / "study.journal")
        return storage if "://" in storage else journal_storage(storage)


#: Every argument of ``audit`` (removed from the config before it is saved as a method's config).
AUDIT_ARGS = set(inspect.signature(AuditSubcommand.audit).parameters) - {"self", "model", "datamodule"}

__all__ = ["AUDIT_ARGS", "MODEL_SEED_KEYS", "AuditSubcommand", "build_run", "class_resets", "method_name"]
