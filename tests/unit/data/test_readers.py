"""Dataset readers on small fake files written by the tests; clear errors when files are missing."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearn_pl.data import CIFAR10, CIFAR100, MNIST, SVHN, Digits, FashionMNIST, ImageFolder


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("reader", [MNIST, FashionMNIST])
def test_idx_readers(tmp_path, reader, gz):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10, gz)
    train = reader(str(tmp_path)).load("train")
    test = reader(str(tmp_path)).load("test")
    assert train.images.shape == (12, 1, 28, 28) and len(test) == 5
    assert train.targets.tolist() == [i % 10 for i in range(12)]


def test_idx_reader_finds_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), False)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([1, 2, 3]), False)
    assert MNIST(str(tmp_path)).load("test").targets.tolist() == [1, 2, 3]


def test_missing_idx_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*Expected files"):
        MNIST(str(tmp_path / "nowhere")).load("train")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST(str(tmp_path)).load("test")


def write_cifar(folder: Path, names: list[str], key: bytes, n: int = 4) -> None:
    folder.mkdir(parents=True)
    for name in names:
        batch = {b"data": np.full((n, 3072), 128, dtype=np.uint8), key: list(range(n))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


def test_cifar10_and_cifar100(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels")
    train = CIFAR10(str(tmp_path)).load("train")
    assert train.images.shape == (20, 3, 32, 32) and train.targets.tolist()[:4] == [0, 1, 2, 3]
    write_cifar(tmp_path / "c100" / "cifar-100-python", ["train", "test"], b"fine_labels")
    assert len(CIFAR100(str(tmp_path / "c100")).load("test")) == 4
    with pytest.raises(FileNotFoundError, match="data_batch_1.*cifar-10-python.tar.gz"):
        CIFAR10(str(tmp_path / "empty")).load("train")


def test_svhn(tmp_path, monkeypatch):
    from scipy.io import savemat
    from torchvision import datasets

    # The reader delegates to torchvision, which checks the official file's MD5; a fake file passes here only.
    monkeypatch.setattr(datasets.SVHN, "_check_integrity", lambda self: True)

    savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 3), np.uint8), "y": np.array([[10], [1], [2]])})
    ds = SVHN(str(tmp_path)).load("test")
    assert ds.images.shape == (3, 3, 32, 32) and ds.targets.tolist() == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        SVHN(str(tmp_path)).load("train")


def test_image_folder(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / split / cls / "a.png")
    reader = ImageFolder(str(tmp_path), image_size=8)
    assert reader.num_classes == 2
    ds = reader.load("train")
    x, y = ds[1]
    assert x.shape == (3, 8, 8) and y == 1
    from unlearn_pl.utils.describe import HASH_LENGTH

    assert len(ds.fingerprint()) == HASH_LENGTH
    with pytest.raises(FileNotFoundError, match="train/<class>"):
        ImageFolder(str(tmp_path / "missing"))


def test_digits_is_offline_and_stratified():
    d = Digits()
    train, test = d.load("train"), d.load("test")
    assert len(train) + len(test) == 1797
    assert set(test.targets.tolist()) == set(range(10))
    assert train.fingerprint() == Digits().load("train").fingerprint()
    assert abs(float(train.images.mean())) < 0.1 and torch.isfinite(train.images).all()


def test_svhn_with_another_files_checksum_is_named(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 3), np.uint8), "y": np.array([[10], [1], [2]])})
    with pytest.raises(ValueError, match="test_32x32.mat.*MD5"):
        SVHN(str(tmp_path)).load("test")


def test_cifar_layout_comes_from_torchvision():
    from torchvision import datasets

    assert CIFAR10("x")._names("train") == [n for n, _ in datasets.CIFAR10.train_list]
    assert CIFAR100("x")._folder == datasets.CIFAR100.base_folder == "cifar-100-python"


def test_image_folder_numbers_test_classes_like_the_training_classes(tmp_path):
    """torchvision alone numbers val/{a,c} as {a:0, c:1} while train/{a,b,c} has c=2."""
    from PIL import Image

    layout = {"train": ("a", "b", "c"), "val": ("a", "c")}
    for split, classes in layout.items():
        for cls in classes:
            (tmp_path / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / split / cls / "x.png")
    with pytest.warns(UserWarning, match=r"no class folder for \['b'\]"):
        reader = ImageFolder(str(tmp_path), image_size=4)
    assert reader.num_classes == 3
    test = reader.load("test")
    assert [y for _, y in test.samples] == [0, 2]
    (tmp_path / "val" / "d").mkdir()
    with pytest.raises(ValueError, match=r"classes \['d'\] that the training folder"):
        ImageFolder(str(tmp_path), image_size=4)


def test_cifar_download_uses_torchvisions_address_and_checksum(tmp_path, monkeypatch):
    """download=True fetches through torchvision (no network here: the fetch writes fake batches)."""
    from torchvision import datasets

    import unlearn_pl.data.readers.cifar as readers

    calls = []

    def fake_fetch(url, root, filename, md5):
        calls.append((url, filename, md5))
        write_cifar(
            Path(root) / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
        )

    monkeypatch.setattr(readers, "download_and_extract_archive", fake_fetch)
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10(str(tmp_path)).load("test")
    assert len(CIFAR10(str(tmp_path), download=True).load("test")) == 4
    assert calls == [(datasets.CIFAR10.url, datasets.CIFAR10.filename, datasets.CIFAR10.tgz_md5)]
    CIFAR10(str(tmp_path), download=True).load("train")  # the files are there now: no second fetch
    assert len(calls) == 1


def test_image_folder_serves_grayscale_images_with_one_channel_and_a_mismatch_names_both_numbers(tmp_path):
    """Grayscale PNGs are served as 3 channels unless channels=1; a network for the other number
    of channels is refused before any training, naming both numbers."""
    from PIL import Image

    from unlearn_pl import ReferenceModels, UnlearningDataModule
    from unlearn_pl.data import RandomForget
    from unlearn_pl.models import SmallCNN

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for k in range(4):
                Image.fromarray(np.full((10, 10), 40 * k, np.uint8), mode="L").save(tmp_path / split / cls / f"{k}.png")
    assert ImageFolder(str(tmp_path), image_size=8).load("train")[0][0].shape == (3, 8, 8)
    gray = ImageFolder(str(tmp_path), image_size=8, channels=1)
    assert gray.in_channels == 1 and gray.load("train")[0][0].shape == (1, 8, 8)
    with pytest.raises(ValueError, match=r"channels must be one of \(1, 3\); got 2"):
        ImageFolder(str(tmp_path), channels=2)
    dm = UnlearningDataModule(ImageFolder(str(tmp_path), image_size=8), RandomForget(2), val_fraction=0.25)
    dm.setup()
    with pytest.raises(ValueError, match=r"in_channels=1, the data has 3 channels.*ImageFolder\(channels=\.\.\.\)"):
        ReferenceModels(cache_dir=str(tmp_path / "cache")).prepare(SmallCNN(num_classes=2, in_channels=1), dm)
