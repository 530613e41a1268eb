"""The deliverable's fixtures (tests/conftest.py: MNIST, the smoke switch), shared by the bench's tests."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("deliverable_fixtures", Path(__file__).parents[2] / "tests/conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
DATA_DIR, ROOT, mnist, small_data = _shared.DATA_DIR, _shared.ROOT, _shared.mnist, _shared.small_data
