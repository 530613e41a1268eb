"""Run the new CLI behaviour tests against the code as it was before this change (/tmp/old)."""
import sys, tempfile, traceback
from pathlib import Path
sys.path.insert(0, "/work/main/tests"); sys.path.insert(0, "/work/main")
import test_cli as t
t.ROOT = Path("/tmp/old")
cases = {
    "default output is runs/, not results/": lambda d: t.test_default_output_is_runs_not_results(d, None),
    "an earlier run is never overwritten": None,
    "--lr -1 / nan / seed -1 / seeds without {seed}": None,
    "NaN stop": lambda d: t.test_non_finite_loss_stops_the_run_and_keeps_valid_files(d, None),
    "tiny training set anneals": lambda d: t.test_a_tiny_training_set_still_anneals_the_learning_rate(d, None),
    "SIGTERM like Ctrl-C": lambda d: t.test_sigterm_is_handled_like_ctrl_c(d, None),
    "out naming a file": lambda d: t.test_out_naming_a_file_or_an_impossible_folder_is_one_clear_line(d),
    "data-dir naming a file": lambda d: t.test_data_dir_naming_a_file_is_one_clear_line(d),
}
def overwrite(d):
    done = t.cli("--limit-train", "300", "--epochs", "1", "--out", str(d))
    assert done.returncode == 0
    t.test_an_earlier_run_is_never_overwritten(d)
cases["an earlier run is never overwritten"] = overwrite
def badflags(d):
    failures = []
    for flags, msg in [(["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr"), (["--seed", "-1"], "seed"), (["--seeds", "1-2", "--out", str(d / "x")], "{seed}")]:
        done = t.cli("--limit-train", "200", "--epochs", "1", *flags) if "--out" in flags else t.cli("--limit-train", "200", "--epochs", "1", "--out", str(d / "y"), *flags)
        if not (done.returncode == 2 and msg in done.stderr):
            failures.append(f"{flags}: rc {done.returncode}")
    assert not failures, failures
cases["--lr -1 / nan / seed -1 / seeds without {seed}"] = badflags
for name, case in cases.items():
    with tempfile.TemporaryDirectory() as d:
        try:
            case(Path(d)); print("PASSES on old code (!):", name)
        except Exception as e:
            print("fails on old code:", name, "|", type(e).__name__, str(e).splitlines()[0][:150] if str(e) else "")
