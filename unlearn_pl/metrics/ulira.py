"""U-LiRA (Hayes et al. 2024, arXiv 2403.01218): a bank of shadow models and the per-example attack.

A *bank* is a folder holding, for K shadow models and a few held-out target models, the
logit-scaled confidence φ of every target example after unlearning, and which models trained on
which target (see :mod:`unlearn_pl.shadow`, which builds it, and the ``unlearn-pl ulira``
command). :class:`ShadowBank` reads it and fits the per-example Gaussians; :class:`ULiRA` is the
validation callback that attacks a single run with an existing bank.

A bank answers for one configuration only: the data, the network architecture, the recipe of the
models before unlearning, the localizer, the unlearner and the unlearning schedule. Its
``bank.json`` records a fingerprint of them (:func:`config_parts`), and loading it for another
configuration fails with the parts that differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn

from unlearn_pl._io import atomic_write, write_json
from unlearn_pl.functional.lira import (
    VARIANCES,
    GaussianFit,
    Variance,
    auc,
    balanced_accuracy,
    chance_tolerance,
    fit_gaussians,
    fit_population,
    likelihood_ratio,
    min_shadow_models,
    per_example_success,
    per_model_accuracy,
    tpr_at_fpr,
)
from unlearn_pl.metrics.base import EvaluationCallback, Results
from unlearn_pl.stats import UNIT_RANGE, Estimate, mean_ci

if TYPE_CHECKING:
    from unlearn_pl.classifier import TrainingRecipe
    from unlearn_pl.data.datamodule import UnlearningDataModule

#: The false-positive rates at which the true-positive rate is reported (Carlini et al. 2022).
LOW_FPRS: tuple[float, ...] = (0.01, 0.001)
BANK_FILE = "bank.json"


def describe(value: Any) -> Any:
    """A JSON-able description of a configured object: its class and constructor arguments.

    Arguments are read back as attributes of the same name (the convention of this package's
    localizers and unlearners); modules are described by their architecture (``repr``), not
    their weights. The description never contains memory addresses, so it is the same in every
    process.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Tensor):
        return hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, nn.Module):
        return f"{name}\n{value!r}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"class": name, "args": {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    params = [
        p.name for p in inspect.signature(type(value).__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return {"class": name, "args": {p: describe(getattr(value, p)) for p in params if hasattr(value, p)}}


def training_length(unlearner: Any, recipe: TrainingRecipe, trainer: pl.Trainer) -> dict[str, Any]:
    """The trainer settings that change what unlearning produces.

    ``Retrain`` sets the trainer's epochs itself (its own or the recipe's), so for it the
    configured ``max_epochs`` is irrelevant and is replaced by the epochs it will train.
    """
    from unlearn_pl.unlearners.retrain import Retrain

    epochs = trainer.max_epochs
    if isinstance(unlearner, Retrain):
        epochs = unlearner.epochs if unlearner.epochs is not None else recipe.epochs
    return {
        "epochs": epochs,
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
    datamodule: UnlearningDataModule,
) -> dict[str, Any]:
    """What a bank depends on, by part (compared part by part when a bank is loaded).

    ``recipe.seed`` and ``recipe.accelerator`` are left out: every shadow model draws its own
    seed, and the device does not change the experiment.
    """
    recipe_args = {k: v for k, v in dataclasses.asdict(recipe).items() if k not in ("seed", "accelerator")}
    return {
        "data": datamodule.fingerprint("train"),
        "batch_size": datamodule.batch_size,
        "network": describe(network),
        "recipe": recipe_args,
        "localizer": describe(localizer),
        "unlearner": describe(unlearner),
        "training": training_length(unlearner, recipe, trainer),
    }


def fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of :func:`config_parts`."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
        cls, path: str | Path, parts: dict[str, Any], targets: np.ndarray, membership: np.ndarray, num_shadow: int, seed: int
    ) -> ShadowBank:
        """Create the bank folder, or reopen it if it holds the same configuration and design.

        Raises:
            ValueError: the folder holds a bank of another configuration or design.
        """
        path = Path(path)
        meta = {
            "fingerprint": fingerprint(parts),
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
        if fingerprint(parts) == self.fingerprint:
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


def check_design(num_shadow: int, variance: Variance) -> None:
    """Raise ``ValueError`` when ``num_shadow`` shadow models are too few for ``variance``."""
    least = min_shadow_models(variance)
    if num_shadow < least:
        raise ValueError(
            f"variance={variance!r} needs at least {least} shadow models (each target in half of them); got "
            f"num_shadow={num_shadow}: train more{' or use variance=global' if variance == 'per_example' else ''}"
        )


def attack_summary(scores: np.ndarray, member: np.ndarray) -> dict[str, float | None]:
    """Balanced accuracy (threshold 0: the likelihood-ratio test), AUC and TPR at :data:`LOW_FPRS`
    (``None`` when there are too few non-members for that rate)."""
    out: dict[str, float | None] = {
        "ulira_acc": balanced_accuracy(scores, member),
        "ulira_auc": auc(scores, member),
    }
    for fpr in LOW_FPRS:
        out[f"ulira_tpr_at_fpr_{fpr:g}"] = tpr_at_fpr(scores, member, fpr)
    return out


@dataclass
class BankAttack:
    """U-LiRA on a bank's target models after unlearning, with three comparisons: the same
    attack before unlearning (plain LiRA on the models' originals: what unlearning has to
    remove), and the *population* attack (one Gaussian pair for all targets) after and before.

    Attributes:
        summary: :func:`attack_summary` of the per-example attack after unlearning.
        before: the same on the target models' originals (Gaussians fit on the shadows' originals).
        population, population_before: the population attack after and before unlearning.
        per_model: ``{name: (T,) balanced accuracy of each target model}`` for ``"after"``,
            ``"before"``, ``"population"``, ``"population_before"``: the replicates of
            :meth:`interval` (each target model has its own seed, training half and data order).
        success: ``(N,)`` per-target balanced accuracy over the target models after unlearning
            (NaN for a target in, or out of, every target model).
        success_before: the same before unlearning.
        fit: the per-target Gaussians after unlearning.
        num_scored: scored (target, target model) pairs.
        tolerance: :func:`~unlearn_pl.functional.lira.chance_tolerance` of ``num_scored``: how far
            from 0.5 an attack with no signal may land (3σ).
    """

    summary: dict[str, float | None]
    before: dict[str, float | None]
    population: dict[str, float | None]
    population_before: dict[str, float | None]
    per_model: dict[str, np.ndarray]
    success: np.ndarray
    success_before: np.ndarray
    fit: GaussianFit
    num_scored: int
    tolerance: float

    def interval(self, name: str = "after") -> Estimate:
        """Mean and 95% t-interval of the balanced accuracy over the target models (clipped to [0, 1])."""
        return mean_ci(self.per_model[name].tolist(), value_range=UNIT_RANGE)


def attack_bank(bank: ShadowBank, variance: Variance = "global") -> BankAttack:
    """Fit the Gaussians on the bank's K shadow models and attack its T target models."""
    check_design(bank.num_shadow, variance)
    k = bank.num_shadow
    member = bank.membership[k:]
    out: dict[str, Any] = {"per_model": {}}
    for which, suffix in (("phi", ""), ("phi_original", "_before")):
        phi = bank.phi(which)
        for kind, fit in (
            ("", fit_gaussians(phi[:k], bank.membership[:k], variance)),
            ("population", fit_population(phi[:k], bank.membership[:k])),
        ):
            scores = likelihood_ratio(phi[k:], fit)
            name = f"{kind}{suffix}" or "after"
            name = "before" if name == "_before" else name
            out[name] = attack_summary(scores, member)
            out["per_model"][name] = per_model_accuracy(scores, member)
            if not kind:
                out[f"success{suffix}"] = per_example_success(scores, member)
                out[f"fit{suffix}"] = fit
    return BankAttack(
        summary=out["after"], before=out["before"], population=out["population"],
        population_before=out["population_before"], per_model=out["per_model"], success=out["success"],
        success_before=out["success_before"], fit=out["fit"], num_scored=int(member.size),
        tolerance=chance_tolerance(int(member.size)),
    )


class ULiRA(EvaluationCallback):
    """U-LiRA of one run against an existing bank of shadow models (columns ``ulira_*``).

    The run's forget examples must be targets of the bank. Members are the forget examples as
    the **unlearned** model sees them (trained on, then unlearned); non-members are the same
    examples under the **oracle**, which never trained on them. Each φ is scored by the
    per-example likelihood ratio of the bank's Gaussians, and the row reports the balanced
    accuracy (0.5 = indistinguishable from never having trained on them), the AUC and the TPR at
    1% and 0.1% FPR when the forget set is large enough (otherwise the column is left out). The
    ``original`` row attacks the model before unlearning the same way, for comparison.

    The bank's shadow models trained on half of the training pool each, while this run's models
    trained on all of it: their φ are not identically distributed, so this callback's values are
    not calibrated to 0.5 (on ``configs/ulira/digits.yaml`` a Retrain run scores about 0.42 over
    3 seeds). Compare runs of one configuration with it; the ``unlearn-pl ulira`` command attacks
    target models built exactly like the shadows and gives the calibrated numbers.

    Statistics are gathered and de-duplicated by dataset index (torchmetrics), the attack runs on
    rank 0 and its result is broadcast.

    Args:
        bank: the bank folder written by ``unlearn-pl ulira`` for this configuration.
        variance: ``"global"`` (one pooled variance per side) or ``"per_example"``.
        during_fit: also evaluate at the validation epochs of ``fit``.

    Raises:
        FileNotFoundError: no bank at ``bank``.
        ValueError: the bank was made for another configuration (at setup).
    """

    rank_zero_compute = True

    def __init__(self, bank: str, variance: Variance = "global", during_fit: bool = False) -> None:
        super().__init__(during_fit=during_fit)
        if variance not in VARIANCES:
            raise ValueError(f"variance must be one of {VARIANCES}; got {variance!r}")
        self.bank_path = bank
        self.variance = variance
        self._bank: ShadowBank | None = None

    def setup(self, trainer: pl.Trainer, pl_module, stage: str) -> None:
        bank = ShadowBank(self.bank_path)
        parts = config_parts(
            pl_module.initial_network, pl_module.localizer, pl_module.unlearner, pl_module.references.recipe,
            trainer, trainer.datamodule,
        )
        bank.check(parts)
        check_design(bank.num_shadow, self.variance)
        self._bank = bank

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        bank = self._bank if self._bank is not None else ShadowBank(self.bank_path)
        per = pl_module.per_example()
        if "oracle" not in per:
            raise ValueError("ULiRA compares with the oracle (never trained on the forget set); configure references.oracle")
        oracle = per["oracle"]["forget"]
        positions = bank.positions(oracle["index"].numpy())
        full = bank.fit(self.variance)
        fit = GaussianFit(*(getattr(full, f)[positions] for f in ("mean_in", "std_in", "mean_out", "std_out")), full.variance)
        negatives = likelihood_ratio(oracle["phi"].double().numpy(), fit)
        out: Results = {}
        for model in ("original", "unlearned"):
            stats = per.get(model, {}).get("forget")
            if stats is None:
                continue
            if not torch.equal(stats["index"], oracle["index"]):
                raise ValueError(f"the {model} and oracle models were evaluated on different forget examples")
            positives = likelihood_ratio(stats["phi"].double().numpy(), fit)
            scores = np.concatenate([positives, negatives])
            member = np.concatenate([np.ones(len(positives), bool), np.zeros(len(negatives), bool)])
            out[model] = {k: v for k, v in attack_summary(scores, member).items() if v is not None}
        return out


__all__ = ["LOW_FPRS", "BankAttack", "ShadowBank", "ULiRA", "attack_bank", "attack_summary", "check_design", "config_parts", "describe", "fingerprint"]
