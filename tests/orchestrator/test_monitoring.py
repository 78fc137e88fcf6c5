"""Watching a real sweep: a launch of two trials on digits, one of whose Ray workers is SIGKILLed after its first
epoch (so it resumes). While it runs, the node's Prometheus endpoint on 127.0.0.1 is scraped for each trial's gauges;
afterwards the TensorBoard runs are read back with TensorFlow's reader, and ``gnsweep report`` names the page and the
runs. The Grafana dashboard only queries metrics the code sets.

The launch joins the shared Ray (its node exports metrics every second) and trains with the fake trainer
(tests/support/fake_trainer.py): the gauges are set by gnsweep's trainable around whatever trains, and the
TensorBoard files are written by the driver."""
import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.tune.metrics import SWEEP_GAUGE, TRIAL_GAUGES
from tests.support.cli import fake_trainer_env, gnsweep, write_spec
from tests.support.launches import Launch, epoch_rows

EPOCHS = 4
STEP_SECONDS = 0.05  # 22 steps an epoch at batch 64: about a second, an export interval of the shared Ray
KILLED, OTHER = "bn-b64-s0", "gn-b64-g8-s0"
SAMPLE = re.compile(r"^(ray_gnsweep_\w+)\{([^}]*)\} (\S+)$")
DASHBOARD = Path(__file__).parents[2] / "cluster" / "grafana" / "gnsweep-sweep.json"


def scrape(session: Path, sweep: str) -> list[tuple[str, dict, float]]:
    """The samples of sweep ``sweep`` on the local node's metrics endpoint (its port as Ray records it in
    ``session``)."""
    ports = sorted(session.glob("metrics_export_port_*"))
    if not ports:
        return []
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{ports[0].read_text().strip()}/metrics", timeout=5).read()
    except OSError:
        return []
    samples = []
    for line in text.decode().splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m[2]))
            if labels.get("sweep") == sweep:
                samples.append((m[1], labels, float(m[3])))
    return samples


@pytest.fixture(scope="module")
def watched(tmp_path_factory, digits_dataset, shared_ray):
    root = tmp_path_factory.mktemp("watched")
    spec = write_spec(root / "watched.yaml", digits_dataset, name="watched", epochs=EPOCHS, retries=1,
                      studies="norms: {norm: [bn, gn], batch_size: [64]}")
    sweep_dir = root / "results" / "watched"
    launch = Launch(spec, root / "results", cwd=root, ray=shared_ray,
                    extra_env=fake_trainer_env(step_seconds=STEP_SECONDS))
    seen: list[tuple[str, dict, float]] = []
    killed = False
    try:
        while launch.proc.poll() is None:
            seen += scrape(shared_ray.session, "watched")
            # kill once the first attempt's gauges were scraped (a retry of a few short epochs may end before its
            # first export), or at the latest with one epoch left
            exported = any(labels.get("trial_key") == KILLED for _, labels, _ in seen)
            done = len(epoch_rows(sweep_dir, KILLED))
            if not killed and done and (exported or done >= EPOCHS - 1):
                workers = launch.workers(KILLED)
                if workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed = True
            assert time.monotonic() - launch.started < 400, launch.tail()
            time.sleep(0.2)
        rc = launch.wait()
    finally:
        launch.kill()
    return {"root": root, "sweep_dir": sweep_dir, "rc": rc, "launch": launch, "seen": seen, "killed": killed}


@pytest.mark.slow
def test_running_trials_export_their_gauges(watched):
    assert watched["rc"] == 0, watched["launch"].tail()
    assert "I0000" not in watched["launch"].stderr and "Token authentication is enabled" not in watched["launch"].stderr
    trial_samples = [(name, labels, v) for name, labels, v in watched["seen"] if name != f"ray_{SWEEP_GAUGE}"]
    for key, norm in ((KILLED, "bn"), (OTHER, "gn")):
        mine = [(name, labels, v) for name, labels, v in trial_samples if labels.get("trial_key") == key]
        assert {name for name, _, _ in mine} == {f"ray_{g}" for g in TRIAL_GAUGES}, (key, watched["seen"][-8:])
        assert all(labels["sweep"] == "watched" and labels["norm"] == norm and labels["batch_size"] == "64"
                   for _, labels, _ in mine)
        epochs = {v for name, _, v in mine if name == "ray_gnsweep_trial_epoch"}
        errors = {v for name, _, v in mine if name == "ray_gnsweep_trial_val_error"}
        assert epochs <= {float(e) for e in range(1, EPOCHS + 1)} and epochs and all(0 <= e <= 100 for e in errors)
    states = {labels["state"] for name, labels, _ in watched["seen"] if name == f"ray_{SWEEP_GAUGE}"}
    assert states == {"pending", "running", "finished", "failed"}


@pytest.mark.slow
def test_tensorboard_runs_hold_each_epoch_once_after_a_resume(watched):
    import tensorflow as tf

    assert watched["killed"], "the worker of the first trial was never found to kill"
    sweep_dir = watched["sweep_dir"]
    trials = pd.read_parquet(sweep_dir / "trials").set_index("trial_key")
    assert trials.loc[KILLED, "attempts"] == 2 and set(trials["status"]) == {"completed"}
    epochs = pd.read_parquet(sweep_dir / "epochs")
    for key in (KILLED, OTHER):
        run = sweep_dir / "tensorboard" / key
        names = sorted(p.name for p in run.iterdir())
        # the run's hyperparameters (000000), then one file per epoch
        assert names == [f"events.out.tfevents.{e:06d}.gnsweep" for e in range(0, EPOCHS + 1)]
        val = [(ev.step, v.simple_value) for name in names
               for ev in tf.compat.v1.train.summary_iterator(str(run / name)) for v in ev.summary.value
               if v.tag == "error/val"]
        rows = epochs[epochs.trial_key == key].sort_values("epoch")
        assert [s for s, _ in val] == list(range(1, EPOCHS + 1)), "one point per epoch, none drawn twice"
        assert [v for _, v in val] == pytest.approx(rows["val_err"].tolist(), abs=1e-4)


@pytest.mark.slow
def test_report_names_the_page_and_the_tensorboard_runs(watched):
    root = watched["root"]
    run = gnsweep("report", "watched", "--results", root / "results", cwd=root)
    assert run.returncode == 0, run.stderr
    page = watched["sweep_dir"] / "report" / "report.html"
    runs = watched["sweep_dir"] / "tensorboard"
    assert f"page: {page}" in run.stdout and f"tensorboard runs: {runs}" in run.stdout
    assert "The sweep has finished" in page.read_text()


def test_grafana_dashboard_queries_only_gnsweeps_metrics():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = set(re.findall(r"\bray_gnsweep_\w+", " ".join(exprs)))
    assert used == {f"ray_{g}" for g in (*TRIAL_GAUGES, SWEEP_GAUGE)}
    assert all('sweep=~"$sweep"' in e for e in exprs)
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "sweep"}
