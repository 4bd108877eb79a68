"""Per-example audits over model seeds: the NeurIPS 2023 unlearning challenge's forgetting quality
and final score, and KLOM (see ``docs/audits.md``).

- :mod:`~unlearn_pl.audit.plan`: the fixed split and the recorded examples (:class:`AuditPlan`);
- :mod:`~unlearn_pl.audit.outputs`: recording a model's per-example outputs, the audit folder;
- :mod:`~unlearn_pl.audit.trial`: one trial per method and seed on the study engine;
- :mod:`~unlearn_pl.audit.scores`: one method's audit from its banks, with bootstrap intervals;
- :mod:`~unlearn_pl.audit.banks`, :mod:`~unlearn_pl.audit.report`: every method's audit, its tables and plots.

The ``unlearn-pl audit`` command (:mod:`unlearn_pl.cli.audit`) runs them.
"""

from unlearn_pl.audit.banks import ORIGINAL, audit_methods, load_banks
from unlearn_pl.audit.outputs import AuditStore, model_outputs
from unlearn_pl.audit.plan import AuditPlan, check_fixed_split
from unlearn_pl.audit.scores import Banks, MethodAudit, audit_method

__all__ = [
    "ORIGINAL",
    "AuditPlan",
    "AuditStore",
    "Banks",
    "MethodAudit",
    "audit_method",
    "audit_methods",
    "check_fixed_split",
    "load_banks",
    "model_outputs",
]
