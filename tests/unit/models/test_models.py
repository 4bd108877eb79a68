"""Models: width-scaled CIFAR ResNet-18, small nets, the timm adapter."""

import pytest
import torch

from unlearn_pl.models import MLP, SmallCNN, cifar_resnet18, timm_model


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_resnet18_width_one_is_the_standard_network():
    assert count(cifar_resnet18(width=1.0)) == 11_173_962


@pytest.mark.parametrize("width", [0.1, 0.25, 0.5])
def test_width_scales_channels(width):
    m = cifar_resnet18(width=width, num_classes=7, in_channels=1)
    assert m.conv1.out_channels == round(64 * width)
    assert m.linear.in_features == round(512 * width)
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 7)
    assert count(m) < count(cifar_resnet18(width=min(1.0, 2 * width)))


def test_bad_width_is_rejected():
    with pytest.raises(ValueError, match="width"):
        cifar_resnet18(width=0)


def test_small_nets():
    assert SmallCNN(num_classes=3, in_channels=2)(torch.randn(4, 2, 8, 8)).shape == (4, 3)
    assert MLP(in_features=64, num_classes=5)(torch.randn(4, 1, 8, 8)).shape == (4, 5)


def test_timm_by_name_and_local_weights(tmp_path):
    m = timm_model("resnet18", num_classes=4, in_channels=1)
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    path = tmp_path / "w.pth"
    torch.save(timm_model("resnet18", num_classes=4, in_channels=1).state_dict(), path)
    loaded = timm_model("resnet18", num_classes=4, in_channels=1, pretrained_file=str(path))
    ref = torch.load(path, weights_only=True)
    assert torch.equal(loaded.state_dict()["conv1.weight"], ref["conv1.weight"])


def test_timm_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown timm model 'resnet_nope'"):
        timm_model("resnet_nope")
    with pytest.raises(FileNotFoundError, match="cannot download"):
        timm_model("resnet18", pretrained_file=str(tmp_path / "missing.pth"))
