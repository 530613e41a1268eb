"""The NaN check's message at commit 715012b and now (a list of losses instead of a per-step
device write): the same step named. Run from the repository root: python results/checks/nan_step_check.py"""

import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, ".")
old_dir = Path(tempfile.mkdtemp())
(old_dir / "utils_old.py").write_text(subprocess.run(["git", "show", "715012b:utils.py"], capture_output=True,
                                                     text=True, check=True).stdout)
sys.path.insert(0, str(old_dir))
import utils  # noqa: E402
import utils_old  # noqa: E402
from model import Net  # noqa: E402

x, y = utils.dataset_tensors(utils.get_mnist("data")[0], limit=6400)
for lr, steps in ((1e5, 20000), (1e4, 20000), (1e3, 20000), (300.0, 20000)):
    messages = []
    for module in (utils_old, utils):
        torch.manual_seed(0)
        recipe = module.Recipe(epochs=1, batch_size=32, lr=lr)
        model = Net()
        optimizer, scheduler = module.make_optimizer(model, recipe, steps)
        try:
            module.train_epoch(model, x, y, optimizer, scheduler, recipe, torch.Generator().manual_seed(0), False)
            messages.append("finite")
        except module.NonFiniteLossError as err:
            messages.append(str(err))
    print(f"peak lr {lr:g}: same message: {messages[0] == messages[1]} | {messages[1]}")
