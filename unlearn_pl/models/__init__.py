"""Models: width-scaled CIFAR ResNet-18, small nets for tests, a timm adapter, and how a network executes."""

from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.models.execution import NetworkExecution
from unlearn_pl.models.resnet import BasicBlock, CifarResNet, cifar_resnet18
from unlearn_pl.models.small import MLP, SmallCNN
from unlearn_pl.models.timm_adapter import timm_model

__all__ = [
    "ImageClassifier",
    "NetworkExecution",
    "BasicBlock",
    "CifarResNet",
    "cifar_resnet18",
    "MLP",
    "SmallCNN",
    "timm_model",
]
