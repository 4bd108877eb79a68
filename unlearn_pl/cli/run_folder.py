"""Run folders: named after the run's method, and atomic (two runs started at once in one logger
folder never share ``version_N``).

A logger's ``name`` may hold the placeholders ``{localizer}`` and ``{unlearner}``, filled with the
configured classes' names (:func:`run_name`): the quick start's ``quickstart/{localizer}-{unlearner}``
puts a DEL + ResetFinetune run in ``runs/quickstart/DEL-ResetFinetune/`` and the same config
composed with ``configs/methods/neggrad_plus.yaml`` in ``runs/quickstart/DEL-NegGradPlus/``.

Lightning's ``CSVLogger`` and ``TensorBoardLogger`` pick the next ``version_N`` by listing the
folder and create it later, when they first write; two processes that list before either writes
get the same ``N`` and write into one folder. Reserving the folder with ``os.mkdir`` (which fails
if the folder exists, atomically) and retrying with ``N + 1`` closes that window.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only


def reserve_versions(loggers: Iterable[Any]) -> dict[Path, int]:
    """Create the run folder of every logger that would pick its version itself; pin that version.

    Loggers with an explicit ``version`` and loggers without Lightning's ``version_N`` scheme are
    left alone; loggers sharing one folder get one version, as Lightning gives them. Only the
    launching process (global rank 0) reserves: processes started by a DDP launcher receive the
    run folder from rank 0 through Lightning's broadcasts.

    Returns:
        ``{logger folder: reserved version}``.
    """
    reserved: dict[Path, int] = {}
    if getattr(rank_zero_only, "rank", 0) != 0:  # Lightning sets the process's rank on the function
        return reserved
    for logger in loggers:
        if getattr(logger, "_version", 0) is not None or not callable(getattr(logger, "_get_next_version", None)):
            continue
        if "://" in str(logger.root_dir):  # a remote filesystem (s3://…): os.mkdir cannot reserve there
            continue
        root = Path(logger.root_dir)
        if root not in reserved:
            root.mkdir(parents=True, exist_ok=True)
            version = logger._get_next_version()
            while True:
                try:
                    (root / f"version_{version}").mkdir()
                    break
                except FileExistsError:  # another run took it since the listing
                    version += 1
            reserved[root] = version
        logger._version = reserved[root]
    return reserved


def run_name(template: str, model_config: Any) -> str:
    """``template`` with ``{localizer}`` and ``{unlearner}`` replaced by the class names that
    ``model_config`` (the parsed ``model`` block) configures; ``Full`` and ``none`` when unset."""

    def name(part: str, unset: str) -> str:
        block = model_config.get(f"init_args.{part}") if hasattr(model_config, "get") else None
        path = block.get("class_path") if block is not None and hasattr(block, "get") else None
        return str(path).rsplit(".", 1)[-1] if path else unset

    return template.replace("{localizer}", name("localizer", "Full")).replace("{unlearner}", name("unlearner", "none"))
