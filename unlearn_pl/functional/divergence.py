"""Distillation divergences (SCRUB's teacher–student KL)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def distillation_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """``T² · KL(p_teacher ‖ p_student)`` with both distributions softened by temperature ``T``.

    ``p = softmax(logits / T)``; the KL is summed over classes and averaged over the batch
    (Hinton et al.'s distillation loss, SCRUB's ``DistillKL``). The ``T²`` factor keeps gradient
    magnitudes comparable across temperatures. Gradients flow into ``student_logits`` only if
    the teacher's logits are detached (the caller's choice).

    Example:
        >>> import torch
        >>> float(distillation_kl(torch.zeros(2, 3), torch.zeros(2, 3)))
        0.0
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits must have the same shape; got {tuple(student_logits.shape)} "
            f"and {tuple(teacher_logits.shape)}"
        )
    # The operations of SCRUB's DistillKL (SCRUB/thirdparty/repdistiller/distiller_zoo/KD.py),
    # in its order, so SCRUB's weights follow the authors' to rounding.
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="sum") * temperature**2 / student_logits.shape[0]
