"""``ULiRA``: the validation callback that attacks one run with an existing bank of shadow models."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch

from unlearn_pl.functional.lira import GaussianFit, Variance, likelihood_ratio
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.names import Results
from unlearn_pl.protocols import UnlearningModel, attached_data
from unlearn_pl.ulira.attack import attack_summary, check_design
from unlearn_pl.ulira.bank import ShadowBank, config_parts
from unlearn_pl.utils.arguments import check_value


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
        check_value("variance", variance, Variance)
        self.bank_path = bank
        self.variance = variance
        self._bank: ShadowBank | None = None

    def setup(self, trainer: pl.Trainer, pl_module: UnlearningModel, stage: str) -> None:  # type: ignore[override]  # run by UnlearningModule only
        bank = ShadowBank(self.bank_path)
        parts = config_parts(
            pl_module.initial_network,
            pl_module.localizer,
            pl_module.unlearner,
            pl_module.references.recipe,
            trainer,
            attached_data(trainer),
        )
        bank.check(parts)
        check_design(bank.num_shadow, self.variance)
        self._bank = bank

    def evaluate(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> Results:
        bank = self._bank if self._bank is not None else ShadowBank(self.bank_path)
        per = pl_module.per_example()
        if "oracle" not in per:
            raise ValueError(
                "ULiRA compares with the oracle (never trained on the forget set); configure references.oracle"
            )
        oracle = per["oracle"]["forget"]
        positions = bank.positions(oracle["index"].numpy())
        full = bank.fit(self.variance)
        fit = GaussianFit(
            full.mean_in[positions],
            full.std_in[positions],
            full.mean_out[positions],
            full.std_out[positions],
            full.variance,
        )
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
