"""Silences Lightning's litlogger/litmodels advertisements, and nothing else.

Lightning 2.6 logs "💡 Tip: For seamless cloud logging …" on every ``Trainer`` whose loggers
include no ``LitLogger`` (even ``logger=False``), and "💡 Tip: For seamless cloud uploads …"
on every fit with checkpointing (``trainer/connectors/logger_connector/logger_connector.py``
and ``trainer/connectors/callback_connector.py``). Neither has a setting to turn it off
(https://github.com/Lightning-AI/pytorch-lightning/issues/21294). One unlearning run builds
three trainers (original, oracle, unlearning), so they would fill a good part of its output,
from the CLI and from Python alike. Importing :mod:`unlearn_pl` installs :class:`DropLightningTips` on
Lightning's rank-zero logger; every other message of that logger (devices, checkpoints,
warnings) still passes, and so would any other "💡 Tip" Lightning adds.
"""

from __future__ import annotations

import logging

#: The logger ``lightning.pytorch``'s ``rank_zero_info`` writes to.
RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class DropLightningTips(logging.Filter):
    """A logging filter that drops exactly the litlogger/litmodels "💡 Tip" records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("💡 Tip:") and ("litlogger" in message or "litmodels" in message))


def quiet_lightning_tips() -> None:
    """Install :class:`DropLightningTips` on Lightning's rank-zero logger (idempotent)."""
    log = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(f, DropLightningTips) for f in log.filters):
        log.addFilter(DropLightningTips())
