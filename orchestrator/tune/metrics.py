"""A sweep's live numbers as Ray metrics: each running trial sets gauges (epoch, val and train error, images/s)
labelled by sweep, trial key, norm and batch size, and the driver counts trials by state. Ray exports them on every
node's Prometheus endpoint (as ``ray_<name>``), which the Ray dashboard's Metrics view and Grafana read once the
cluster has Prometheus; ``cluster/grafana/gnsweep-sweep.json`` is a dashboard over them.
"""
from __future__ import annotations

from ray import tune

TRIAL_TAGS = ("sweep", "trial_key", "norm", "batch_size")
TRIAL_GAUGES = {  # gauge name -> (epoch report key, description)
    "gnsweep_trial_epoch": ("epoch", "Epochs the trial has finished"),
    "gnsweep_trial_val_error": ("val_err", "Top-1 validation error of the trial's latest epoch, percent"),
    "gnsweep_trial_train_error": ("train_err", "Top-1 training error of the trial's latest epoch, percent"),
    "gnsweep_trial_images_per_second": ("images_per_second", "Training images per second in the latest epoch"),
}
SWEEP_GAUGE = "gnsweep_sweep_trials"
STATES = ("pending", "running", "finished", "failed")


class TrialGauges:
    """The gauges of one trial, set from each epoch's metrics inside the trial's worker."""

    def __init__(self, sweep: str, trial_key: str, norm: str, batch_size: int):
        from ray.util.metrics import Gauge

        tags = {"sweep": sweep, "trial_key": trial_key, "norm": norm, "batch_size": str(batch_size)}
        self.gauges = {}
        for name, (key, description) in TRIAL_GAUGES.items():
            gauge = Gauge(name, description=description, tag_keys=TRIAL_TAGS)
            gauge.set_default_tags(tags)
            self.gauges[key] = gauge

    def record(self, metrics: dict) -> None:
        for key, gauge in self.gauges.items():
            value = metrics.get(key)
            if value is not None:
                gauge.set(float(value))


class SweepGauges(tune.Callback):
    """Trials pending, running, finished and failed in this launch, as one gauge labelled by state (driver side)."""

    def __init__(self, sweep: str, pending: int):
        from ray.util.metrics import Gauge

        self.sweep = sweep
        self.counts = dict.fromkeys(STATES, 0)
        self.counts["pending"] = pending
        self.gauge = Gauge(SWEEP_GAUGE, description="Trials of the sweep's current launch by state",
                           tag_keys=("sweep", "state"))
        self._publish()

    def _publish(self) -> None:
        for state, n in self.counts.items():
            self.gauge.set(n, tags={"sweep": self.sweep, "state": state})

    def _move(self, source: str, target: str) -> None:
        self.counts[source] = max(0, self.counts[source] - 1)
        self.counts[target] += 1
        self._publish()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._move("pending", "running")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._move("running", "pending")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._move("running", "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._move("running", "failed")
