"""Any timm model by name, with pretrained weights only from a local file (no hub access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from unlearn_pl.utils.arguments import PositiveInt, check_arguments


def timm_model(
    name: str,
    num_classes: PositiveInt = 10,
    in_channels: PositiveInt = 3,
    pretrained_file: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """``timm.create_model(name)`` with ``num_classes``/``in_channels``; weights from ``pretrained_file``.

    timm adapts the classifier head and input stem to ``num_classes``/``in_channels`` when it
    loads the file, as it does for hub weights. Extra keyword arguments go to ``create_model``
    (e.g. ``img_size=32`` for a ViT on CIFAR).
    """
    check_arguments(timm_model, locals())
    # Imported on use: timm adds 0.3 s to every process start (a command, a study worker, a DDP
    # rank), and most runs never build a timm model.
    import timm

    if name not in timm.list_models():
        close = timm.list_models(f"*{name}*")[:10]
        raise ValueError(f"unknown timm model {name!r}; similar names: {close or 'none'}")
    if pretrained_file is None:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)
    if not Path(pretrained_file).is_file():
        raise FileNotFoundError(
            f"pretrained_file {pretrained_file!r} does not exist; give a local .pth/.safetensors file "
            "(this machine cannot download from a model hub)"
        )
    return timm.create_model(
        name,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(pretrained_file)},
        num_classes=num_classes,
        in_chans=in_channels,
        **kwargs,
    )
