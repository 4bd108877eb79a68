"""CIFAR-style ResNet-18 with a width scale (the overparameterization study's x-axis)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.utils.arguments import NetworkWidth, PositiveInt, check_arguments


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (He et al., 2016)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(ImageClassifier):
    """ResNet for 32×32-ish inputs: a 3×3 stem (no max-pool), four stages, global pooling.

    Args:
        num_blocks: blocks per stage, ``(2, 2, 2, 2)`` for ResNet-18.
        width: scales every layer's channel count (64·w, 128·w, 256·w, 512·w), at least 1.
        num_classes: output classes.
        in_channels: image channels.
    """

    def __init__(
        self,
        num_blocks: tuple[PositiveInt, ...] = (2, 2, 2, 2),
        width: NetworkWidth = 1.0,
        num_classes: PositiveInt = 10,
        in_channels: PositiveInt = 3,
    ) -> None:
        super().__init__()
        check_arguments(CifarResNet.__init__, locals())
        planes = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        # Constructor arguments kept under their names (checkpoints describe the network by them).
        self.num_blocks = tuple(num_blocks)
        self.width = width
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, planes[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        layers, in_planes = [], planes[0]
        for i, (p, n) in enumerate(zip(planes, num_blocks, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_planes, p, stride=1 if i == 0 or j > 0 else 2))
                in_planes = p
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(planes[3], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def cifar_resnet18(
    width: NetworkWidth = 1.0, num_classes: PositiveInt = 10, in_channels: PositiveInt = 3
) -> CifarResNet:
    """CIFAR ResNet-18; ``width=1`` is the standard ~11.2M-parameter network (width at most 4)."""
    return CifarResNet((2, 2, 2, 2), width=width, num_classes=num_classes, in_channels=in_channels)
