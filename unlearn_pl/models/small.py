"""Small networks for tests and quick experiments."""

from __future__ import annotations

from torch import Tensor, nn

from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.utils.arguments import PositiveInt, check_arguments


class SmallCNN(ImageClassifier):
    """Two conv–BN–ReLU blocks, global average pooling and a linear head.

    Args:
        num_classes: output classes.
        in_channels: image channels.
        width: channels of the first block (the second has twice as many).
    """

    def __init__(self, num_classes: PositiveInt = 10, in_channels: PositiveInt = 1, width: PositiveInt = 16) -> None:
        super().__init__()
        check_arguments(SmallCNN.__init__, locals())
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLP(ImageClassifier):
    """A multilayer perceptron on flattened images.

    Args:
        in_features: flattened input size (e.g. 64 for 8×8 digits).
        num_classes: output classes.
        hidden: widths of the hidden layers.
    """

    def __init__(
        self, in_features: PositiveInt = 64, num_classes: PositiveInt = 10, hidden: tuple[PositiveInt, ...] = (128,)
    ) -> None:
        super().__init__()
        check_arguments(MLP.__init__, locals())
        self.in_features, self.num_classes, self.hidden = in_features, num_classes, tuple(hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(in_features, h), nn.ReLU()]
            in_features = h
        layers.append(nn.Linear(in_features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
