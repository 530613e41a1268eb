"""The maintainer's tools: timing (benchmark), the generated pages and the release check (report).

Run from the repository root as `python -m lab.benchmark` and `python -m lab.report`; docs/lab.md says
what each writes. They import the deliverable's modules from the root, which this puts on the path.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
