"""A real sweep end to end: the CLI, local Ray, Ray Tune, real Keras training on real digits, real Parquet. Then what
later launches of the same sweep do with what it left (run nothing, run only new trials, refuse other settings, take
over a stale claim); the one that trains joins the shared Ray with the fake trainer."""
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from results.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from tests.support.cli import fake_trainer_env, gnsweep, write_spec

EPOCHS = 2
STUDIES = "norms: {norm: [bn, gn], batch_size: [64]}\nsmall: {norm: [bn], batch_size: [128, 64]}"


def small_spec(path: Path, dataset: Path, seeds=(0,)) -> Path:
    return write_spec(path, dataset, name="small", studies=STUDIES, epochs=EPOCHS, seeds=seeds)


@pytest.fixture(scope="module")
def stale_ray_tmpdir():
    """A Ray temp dir whose ray_current_cluster names a cluster long gone (an unroutable TEST-NET address): a plain
    ``ray.init()`` would wait on it forever; launch without --address must start its own local Ray regardless."""
    path = Path(tempfile.mkdtemp(prefix="gnray-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    (path / "ray").mkdir()
    (path / "ray" / "ray_current_cluster").write_text("192.0.2.2:45865")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory, digits_dataset, stale_ray_tmpdir):
    """One launch of a 3-trial sweep (bn-b64 shared by both studies), shared by the tests of this module."""
    root = tmp_path_factory.mktemp("sweep")
    spec = small_spec(root / "small.yaml", digits_dataset)
    started = time.monotonic()
    run = gnsweep("launch", spec, "--results", root / "results", "--no-dashboard", cwd=root, timeout=400,
                  env={"RAY_TMPDIR": str(stale_ray_tmpdir)})
    return root, spec, run, time.monotonic() - started


@pytest.mark.slow
def test_sweep_end_to_end(small_sweep):
    root, _, run, _ = small_sweep
    assert run.returncode == 0, run.stderr[-3000:]
    assert "3 trials" in run.stdout and "results:" in run.stdout
    epochs = pd.read_parquet(root / "results" / "small" / "epochs")
    assert list(epochs.columns) == EPOCH_SCHEMA.names
    assert len(epochs) == 3 * EPOCHS
    assert epochs.groupby("trial_key")["epoch"].apply(sorted).apply(list).tolist() == [[1, 2]] * 3
    assert not epochs.duplicated(["trial_key", "epoch"]).any()
    assert epochs["val_err"].between(0, 100).all() and epochs["images_per_second"].gt(0).all()
    assert set(epochs["batch_size"]) == {64, 128} and str(epochs["batch_size"].dtype) == "int32"
    gn = epochs[epochs.norm == "gn"]
    assert set(gn["groups"]) == {8} and epochs[epochs.norm == "bn"]["groups"].isna().all()
    # lr scales with the batch and decays (epochs=2: /10 at epoch 1)
    bn64 = epochs[epochs.trial_key == "bn-b64-s0"].sort_values("epoch")
    assert bn64["lr"].tolist() == pytest.approx([0.2, 0.02])

    trials = pd.read_parquet(root / "results" / "small" / "trials")
    assert list(trials.columns) == TRIAL_SCHEMA.names
    assert sorted(trials["trial_key"]) == ["bn-b128-s0", "bn-b64-s0", "gn-b64-g8-s0"]
    assert set(trials["status"]) == {"completed"} and (trials["epochs"] == EPOCHS).all()
    assert set(epochs["precision"]) == set(trials["precision"]) == {"float32"}
    shared = trials.set_index("trial_key").loc["bn-b64-s0"]
    assert sorted(shared["studies"]) == ["norms", "small"]
    record = json.loads((root / "results" / "small" / "sweep.json").read_text())
    assert record["studies"] == {"norms": "norms", "small": "batch_size"}
    assert record["images"] == {"train": 1437, "val": 360}  # dataset.json's counts: the report's val size
    assert sorted(record["trials"]) == sorted(trials["trial_key"])
    for key, group in epochs.groupby("trial_key"):
        final = trials.set_index("trial_key").loc[key, "final_val_err"]
        assert final == pytest.approx(group.sort_values("epoch")["val_err"].tail(5).median())


@pytest.mark.slow
def test_status_lists_every_trial(small_sweep):
    root = small_sweep[0]
    run = gnsweep("status", "small", "--results", root / "results", cwd=root)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    epochs = pd.read_parquet(root / "results" / "small" / "epochs").sort_values("epoch")
    trials = pd.read_parquet(root / "results" / "small" / "trials").set_index("trial_key")
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert lines[0].split() == ["trial", "status", "epochs", "latest", "%", "final", "%", "left", "error"]
    assert sorted(rows) == sorted(trials.index) and len(lines) == 6
    for key, (_, status, n, latest, final, left) in rows.items():
        assert (status, int(n)) == ("completed", EPOCHS)
        assert float(latest) == pytest.approx(epochs[epochs.trial_key == key]["val_err"].iloc[-1], abs=0.005)
        assert float(final) == pytest.approx(trials.loc[key, "final_val_err"], abs=0.005)
    assert lines[4] == "3/3 trials ended, 0 running; nothing left to run"
    assert lines[5].startswith("remaining: 0 s of trial time")


@pytest.mark.slow
def test_relaunch_is_a_no_op(small_sweep):
    root, spec, first, _ = small_sweep
    before = sorted(p.name for p in (root / "results" / "small" / "epochs").iterdir())
    started = time.monotonic()
    run = gnsweep("launch", spec, "--results", root / "results", "--no-dashboard", cwd=root)
    assert run.returncode == 0, run.stderr
    assert "nothing to run" in run.stdout and "Ray dashboard" not in run.stdout
    assert sorted(p.name for p in (root / "results" / "small" / "epochs").iterdir()) == before
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_a_new_seed_runs_only_the_new_trials(small_sweep, tmp_path, shared_ray):
    root, spec, _, _ = small_sweep
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    bigger = small_spec(tmp_path / "small.yaml", Path(spec.read_text().split("dataset: ")[1].split("\n")[0]),
                        seeds=(0, 1))
    run = gnsweep("launch", bigger, "--results", results, "--no-dashboard", "--address", shared_ray.address,
                  cwd=tmp_path, timeout=400, env={**shared_ray.join_env, **fake_trainer_env()})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "running 3 of 6 trials" in run.stdout
    trials = pd.read_parquet(results / "small" / "trials").set_index("trial_key")
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}
    assert (trials.loc[[k for k in trials.index if k.endswith("s0")], "attempts"] == 1).all()
    epochs = pd.read_parquet(results / "small" / "epochs")
    assert len(epochs) == 6 * EPOCHS and not epochs.duplicated(["trial_key", "epoch"]).any()


@pytest.mark.slow
def test_changed_settings_under_the_same_name_are_refused(small_sweep, tmp_path):
    root, spec, _, _ = small_sweep
    changed = tmp_path / "small.yaml"
    changed.write_text(spec.read_text().replace(f"epochs: {EPOCHS}", "epochs: 3"))
    run = gnsweep("launch", changed, "--results", root / "results", "--no-dashboard", cwd=tmp_path)
    assert run.returncode == 2
    assert "other settings" in run.stderr and "Traceback" not in run.stderr


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path, digits_dataset):
    spec = small_spec(tmp_path / "small.yaml", digits_dataset)
    run = gnsweep("launch", spec, "--dry-run", "--results", tmp_path / "results", cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "3 trials" in run.stdout and "bn-b64-s0" in run.stdout and "per study: norms 2, small 2" in run.stdout
    assert "seeds: 1 per configuration; one more seed in every study adds 3 runs, " in run.stdout
    assert not (tmp_path / "results").exists()


def test_the_launch_records_the_datasets_image_counts_and_refuses_other_ones(tmp_path, digits_dataset):
    """sweep.json keeps dataset.json's counts (the report's intervals need the val size); a relaunch on a dataset of
    another size under the same name is refused, as changed settings are; a sweep recorded before counts takes them."""
    from orchestrator.launch.launcher import LaunchError, check_fingerprint
    from orchestrator.spec.file import load_spec
    from orchestrator.spec.plan import plan_trials
    from results import store
    from results.records import SweepRecord
    from trainer.data import load_info

    spec = load_spec(small_spec(tmp_path / "small.yaml", digits_dataset))
    trials, counts = plan_trials(spec), load_info(digits_dataset).counts
    check_fingerprint(tmp_path / "old", spec, trials)  # as launched before counts were recorded
    assert store.read_sweep(tmp_path / "old").images == {}
    check_fingerprint(tmp_path / "old", spec, trials, counts)
    assert store.read_sweep(tmp_path / "old").images == counts == {"train": 1437, "val": 360}
    with pytest.raises(LaunchError, match=r"other settings \(images.val: 360 -> 500\)"):
        check_fingerprint(tmp_path / "old", spec, trials, {**counts, "val": 500})
    assert store.read_sweep(tmp_path / "old") == SweepRecord("small", spec.fingerprint(), tuple(t.key for t in trials),
                                                             {"norms": "norms", "small": "batch_size"}, counts)


@pytest.mark.slow
@pytest.mark.parametrize("heartbeat_age, rc", [(3600, 0), (0, 2)])
def test_claim_of_another_host_is_taken_over_once_its_lease_expired(small_sweep, tmp_path, heartbeat_age, rc):
    """A node sharing the results left a claim: expired, the launch takes it over (and releases it at the end);
    renewed, the launch is refused naming that node, and the claim stays as it was."""
    root, spec, _, _ = small_sweep
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    claim = results / "small" / "launch.json"
    claim.write_text(json.dumps({"id": "f" * 32, "host": "node-b.example", "pid": 4242, "pid_started": None,
                                 "since": "2026-12-01T10:00:00+00:00", "heartbeat": time.time() - heartbeat_age,
                                 "lease_seconds": 120.0}))
    before = claim.read_bytes()
    run = gnsweep("launch", spec, "--results", results, "--no-dashboard", cwd=tmp_path)
    assert run.returncode == rc, run.stdout + run.stderr
    if rc == 0:
        assert "nothing to run" in run.stdout and not claim.exists()
    else:
        assert run.stderr.strip().splitlines() == [
            f"gnsweep: sweep 'small' is already being launched (host node-b.example, pid 4242, since "
            f"2026-12-01T10:00:00+00:00; claim {claim}); wait for that launch to end or stop it, then launch again"]
        assert claim.read_bytes() == before


@pytest.mark.parametrize("allow", [False, True])
def test_open_dashboard_without_authentication_is_refused_unless_allowed(tmp_path, digits_dataset, allow):
    spec = small_spec(tmp_path / "small.yaml", digits_dataset)
    run = gnsweep("launch", spec, "--dry-run", "--dashboard-host", "0.0.0.0", *(["--allow-open-network"] * allow),
                  cwd=tmp_path, timeout=60, env={"RAY_AUTH_MODE": "disabled"})
    if allow:
        assert run.returncode == 0 and "warning: --allow-open-network" in run.stdout, run.stderr
    else:
        assert run.returncode == 2 and run.stdout == "", run.stdout
        assert run.stderr.startswith("gnsweep: --dashboard-host 0.0.0.0 with RAY_AUTH_MODE=disabled")
        assert len(run.stderr.strip().splitlines()) == 1 and "--allow-open-network" in run.stderr
