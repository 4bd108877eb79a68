"""U-LiRA (Hayes et al. 2024, arXiv 2403.01218): a bank of shadow models and the per-example attack.

- :mod:`~unlearn_pl.ulira.bank`: the bank on disk (:class:`ShadowBank`) and what it answers for;
- :mod:`~unlearn_pl.ulira.attack`: the attack on the bank's target models (:func:`attack_bank`);
- :mod:`~unlearn_pl.ulira.shadow`: training and unlearning the shadow models as study trials
  (imported on its own: it builds on the unlearning module, which the rest does not need);
- the validation callback that attacks one run is :class:`unlearn_pl.metrics.ULiRA`.
"""

from unlearn_pl.ulira.attack import LOW_FPRS, BankAttack, attack_bank, attack_summary, check_design
from unlearn_pl.ulira.bank import BANK_FILE, ShadowBank, bank_fingerprint, config_parts

__all__ = [
    "BANK_FILE",
    "LOW_FPRS",
    "BankAttack",
    "ShadowBank",
    "attack_bank",
    "attack_summary",
    "bank_fingerprint",
    "check_design",
    "config_parts",
]
