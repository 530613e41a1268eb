"""The bench beside the deliverable: the headless trainer, the speed toolbox, the benchmark, the generated pages and
the release check. Run from the repository root as `python -m lab.train`, `python -m lab.benchmark` and
`python -m lab.report`; lab/README.md says what each writes. They import the deliverable's modules from the root,
which this puts on the path; the deliverable imports nothing from here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
