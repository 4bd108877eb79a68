"""A bank of shadow models for U-LiRA (Hayes et al. 2024, arXiv 2403.01218): their φ values on disk.

A *bank* is a folder holding, for K shadow models and a few held-out target models, the
logit-scaled confidence φ of every target example after unlearning, and which models trained on
which target (see :mod:`unlearn_pl.ulira.shadow`, which builds it, and the ``unlearn-pl ulira``
command). :class:`ShadowBank` reads it and fits the per-example Gaussians;
:class:`~unlearn_pl.metrics.ULiRA` is the validation callback that attacks a single run with an
existing bank.

A bank answers for one configuration only: the data, the network architecture, the recipe of the
models before unlearning, the localizer, the unlearner and the unlearning schedule. Its
``bank.json`` records a fingerprint of them (:func:`config_parts`), and loading it for another
configuration fails with the parts that differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import numpy as np
from torch import nn

from unlearn_pl.functional.lira import GaussianFit, Variance, fit_gaussians
from unlearn_pl.utils.describe import content_hash, fingerprint
from unlearn_pl.utils.io import atomic_write, write_json

if TYPE_CHECKING:
    from unlearn_pl.protocols import UnlearningData
    from unlearn_pl.references.recipe import TrainingRecipe

BANK_FILE = "bank.json"


def training_length(unlearner: Any, recipe: TrainingRecipe, trainer: pl.Trainer) -> dict[str, Any]:
    """The trainer settings that change what unlearning produces; the epochs are those the
    unlearner will train (:meth:`~unlearn_pl.unlearners.Unlearner.training_epochs`)."""
    return {
        "epochs": unlearner.training_epochs(recipe, trainer.max_epochs),
        "max_steps": trainer.max_steps,
        "limit_train_batches": trainer.limit_train_batches,
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "gradient_clip_val": trainer.gradient_clip_val,
        "precision": str(trainer.precision),
    }


def config_parts(
    network: nn.Module,
    localizer: Any,
    unlearner: Any,
    recipe: TrainingRecipe,
    trainer: pl.Trainer,
    datamodule: UnlearningData,
) -> dict[str, Any]:
    """What a bank depends on, by part (compared part by part when a bank is loaded).

    The recipe enters by its :meth:`~unlearn_pl.TrainingRecipe.weight_settings` without ``seed``:
    every shadow model draws its own seed, and where and how fast it trains does not change the experiment.
    """
    recipe_args = {k: v for k, v in recipe.weight_settings().items() if k != "seed"}
    return {
        "data": datamodule.fingerprint("train"),
        "batch_size": datamodule.batch_size,
        "network": fingerprint(network),
        "recipe": recipe_args,
        "localizer": fingerprint(localizer),
        "unlearner": fingerprint(unlearner),
        "training": training_length(unlearner, recipe, trainer),
    }


def bank_fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of :func:`config_parts`."""
    return content_hash(parts)


class ShadowBank:
    """A folder of shadow and target models' φ values for one configuration.

    Layout: ``bank.json`` (configuration parts and fingerprint, target indices, model counts),
    ``membership.npy`` (``(K + T, N)`` booleans: model trained on, then unlearned, the target) and
    ``models/model_<m>.npz`` (φ of the N targets after unlearning, and before it, for model m).
    Models ``0 … K−1`` are the shadow models, ``K … K+T−1`` the target models under attack.

    Args:
        path: the bank folder.

    Raises:
        FileNotFoundError: no bank at ``path``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_file = self.path / BANK_FILE
        if not meta_file.is_file():
            raise FileNotFoundError(
                f"no shadow-model bank at {str(self.path)!r} (missing {BANK_FILE}); build one with `unlearn-pl ulira`"
            )
        self.meta: dict[str, Any] = json.loads(meta_file.read_text())
        self.targets = np.asarray(self.meta["targets"], dtype=np.int64)
        self.num_shadow = int(self.meta["num_shadow"])
        self.num_target_models = int(self.meta["num_target_models"])
        self.membership: np.ndarray = np.load(self.path / "membership.npy", allow_pickle=False)

    @classmethod
    def create(
        cls,
        path: str | Path,
        parts: dict[str, Any],
        targets: np.ndarray,
        membership: np.ndarray,
        num_shadow: int,
        seed: int,
    ) -> ShadowBank:
        """Create the bank folder, or reopen it if it holds the same configuration and design.

        Raises:
            ValueError: the folder holds a bank of another configuration or design.
        """
        path = Path(path)
        meta = {
            "fingerprint": bank_fingerprint(parts),
            "parts": json.loads(json.dumps(parts, default=str)),
            "targets": [int(t) for t in targets],
            "num_shadow": int(num_shadow),
            "num_target_models": int(len(membership) - num_shadow),
            "seed": int(seed),
        }
        if (path / BANK_FILE).is_file():
            bank = cls(path)
            bank.check(parts)
            same = {k: bank.meta.get(k) == meta[k] for k in ("targets", "num_shadow", "num_target_models", "seed")}
            if not all(same.values()):
                differ = [k for k, ok in same.items() if not ok]
                raise ValueError(
                    f"the bank at {str(path)!r} was built with other {', '.join(differ)}; use another folder or the "
                    "same settings"
                )
            return bank
        path.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a path
                np.save(f, membership, allow_pickle=False)

        atomic_write(path / "membership.npy", write)
        write_json(path / BANK_FILE, meta)
        return cls(path)

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def num_models(self) -> int:
        return self.num_shadow + self.num_target_models

    def check(self, parts: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the parts of the configuration that differ from the bank's."""
        if bank_fingerprint(parts) == self.fingerprint:
            return
        theirs = self.meta.get("parts", {})
        ours = json.loads(json.dumps(parts, default=str))
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ValueError(
            f"the shadow-model bank at {str(self.path)!r} was made with another configuration (different "
            f"{', '.join(differ) or 'settings'}); build a bank for this configuration with `unlearn-pl ulira` "
            "using the same config"
        )

    def model_file(self, model: int) -> Path:
        return self.path / "models" / f"model_{model:05d}.npz"

    def save_model(self, model: int, phi: np.ndarray, phi_original: np.ndarray) -> None:
        """Store model ``model``'s φ of the targets after and before unlearning (atomically)."""

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, phi=phi, phi_original=phi_original)

        atomic_write(self.model_file(model), write)

    def missing(self) -> list[int]:
        """Models whose φ is not stored yet."""
        return [m for m in range(self.num_models) if not self.model_file(m).is_file()]

    def phi(self, which: str = "phi") -> np.ndarray:
        """``(K + T, N)`` φ of every model: ``"phi"`` after unlearning, ``"phi_original"`` before.

        Raises:
            ValueError: some models are missing (an unfinished build).
        """
        if missing := self.missing():
            raise ValueError(
                f"the bank at {str(self.path)!r} misses {len(missing)} of {self.num_models} models (e.g. {missing[:5]}); "
                "finish it by running `unlearn-pl ulira` again with the same config"
            )
        return np.stack([np.load(self.model_file(m), allow_pickle=False)[which] for m in range(self.num_models)])

    def fit(self, variance: Variance = "global", which: str = "phi") -> GaussianFit:
        """The per-target Gaussians from the K shadow models."""
        k = self.num_shadow
        return fit_gaussians(self.phi(which)[:k], self.membership[:k], variance)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        """Positions in :attr:`targets` of dataset ``indices``.

        Raises:
            ValueError: some indices are not targets of this bank.
        """
        where = {int(t): i for i, t in enumerate(self.targets)}
        absent = [int(i) for i in indices if int(i) not in where]
        if absent:
            raise ValueError(
                f"{len(absent)} examples (e.g. dataset indices {absent[:10]}) are not targets of the bank at "
                f"{str(self.path)!r}; build the bank with these examples as targets (by default, the run's forget set)"
            )
        return np.asarray([where[int(i)] for i in indices], dtype=np.int64)
