"""Shared fixtures: the real MNIST (fetched once, offline-capable) as tensors; lab/tests uses them too.

Also sets the one smoke switch, SMOKE_TEST=1, unless it is set: the notebook's cells run on 2,000 images for 1
epoch, and every command a test starts trains on 2,000 images (children inherit this process's environment).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SMOKE_TEST", "1")
DATA_DIR = Path(os.environ.get("MNIST_DATA_DIR", ROOT / "data"))

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
