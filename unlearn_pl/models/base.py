"""``ImageClassifier``: the type of an :class:`~unlearn_pl.UnlearningModule`'s network."""

from __future__ import annotations

import abc

from torch import nn


class ImageClassifier(nn.Module, metaclass=abc.ABCMeta):
    """A network that maps a batch of images ``(N, C, H, W)`` to logits ``(N, num_classes)``.

    Every ``nn.Module`` counts as one: ``issubclass``/``isinstance`` are true for any module
    (``__subclasshook__``), so a network of yours, a timm model or ``torch.nn.Sequential`` is
    accepted from Python and as a ``class_path`` without subclassing this. The networks of this
    package subclass it explicitly; that is what ``--model.help`` lists as known subclasses,
    instead of every module torch and torchmetrics define. Functions that build a network, such
    as :func:`~unlearn_pl.models.cifar_resnet18` and :func:`~unlearn_pl.models.timm_model`, are
    valid ``class_path`` values too.
    """

    @classmethod
    def __subclasshook__(cls, subclass: type) -> bool:
        if cls is ImageClassifier:
            return issubclass(subclass, nn.Module)
        return NotImplemented
