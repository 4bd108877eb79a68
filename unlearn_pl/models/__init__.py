"""Models: width-scaled CIFAR ResNet-18, small nets for tests, and a timm adapter."""

from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.models.resnet import BasicBlock, CifarResNet, cifar_resnet18
from unlearn_pl.models.small import MLP, SmallCNN
from unlearn_pl.models.timm_adapter import timm_model

__all__ = ["ImageClassifier", "BasicBlock", "CifarResNet", "cifar_resnet18", "MLP", "SmallCNN", "timm_model"]
