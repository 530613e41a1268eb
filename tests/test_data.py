"""Offline MNIST: IDX files, MD5 checks, the restricted unpickler, augmentation."""

import os
import pickle
import shutil

import numpy as np
import pytest
import torch

import utils
from conftest import DATA_DIR


def test_real_mnist_matches_the_published_statistics(mnist):
    train, test = mnist
    assert (len(train), len(test)) == (60_000, 10_000)
    pixels = train.data.float() / 255
    assert pixels.mean().item() == pytest.approx(utils.MNIST_MEAN, abs=1e-4)
    assert pixels.std().item() == pytest.approx(utils.MNIST_STD, abs=1e-4)
    assert torch.bincount(test.targets).tolist()[:3] == [980, 1135, 1032]


def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    utils.write_idx(tmp_path / "img", images)
    utils.write_idx(tmp_path / "lbl", labels)
    assert np.array_equal(utils.read_idx(tmp_path / "img"), images)
    assert np.array_equal(utils.read_idx(tmp_path / "lbl"), labels)
    assert (tmp_path / "img").read_bytes()[:4] == (2051).to_bytes(4, "big")
    assert sorted(os.listdir(tmp_path)) == ["img", "lbl"]  # no temporary files left behind


def test_idx_writer_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError):
        utils.write_idx(tmp_path / "x", np.zeros((2, 28, 28), dtype=np.float32))


def test_corrupt_raw_file_is_detected_and_rebuilt(tmp_path, mnist, capsys):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(DATA_DIR / "MNIST" / "raw", raw)
    victim = raw / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])  # a truncated, partial download
    assert utils.prepare_mnist(tmp_path) == raw
    assert "MD5 mismatch" in capsys.readouterr().out
    assert utils.md5sum(victim) == utils.MNIST_MD5[victim.name]


def test_no_source_raises_one_clear_error(tmp_path):
    with pytest.raises(utils.MNISTUnavailableError, match="by hand") as err:
        utils.prepare_mnist(tmp_path, download=False)
    assert str(tmp_path.resolve() / "MNIST" / "raw") in str(err.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_code_and_accepts_arrays():
    import io

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        utils.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(_Evil(), protocol=2))).load()
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = utils.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps((array, array[0]), protocol=4))).load()
    assert np.array_equal(loaded[0], array)


def test_identity_augmentation_leaves_images_unchanged(small_data):
    (images, _), _ = small_data
    batch = images[:16].float() / 255
    still = utils.Recipe(rotate=0, shift=0, scale=0)
    assert torch.allclose(utils.augment(batch, still), batch, atol=1e-5)
    moved = utils.augment(batch, utils.Recipe(), torch.Generator().manual_seed(0))
    assert moved.shape == batch.shape and not torch.allclose(moved, batch)
    assert moved.min() >= 0 and moved.max() <= 1


def test_train_batches_cover_every_image_once(small_data):
    (images, labels), _ = small_data
    seen = torch.cat([y for _, y in utils.train_batches(images, labels, 300, torch.Generator().manual_seed(0))])
    assert torch.equal(seen.sort().values, labels.sort().values)
