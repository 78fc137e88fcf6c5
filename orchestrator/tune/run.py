"""Thin glue from a planned sweep to Ray Tune: one function trainable calling ``train_trial``, resources per trial,
retries, concurrency. Ray Tune grid-searches ``{"key", "config"}`` trial dicts, schedules and retries; the Parquet results store (not Tune's state) is the truth
about what is done, so a relaunch simply runs the trials that are not finished."""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import asdict, dataclass, field

os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# gnsweep handles Ctrl-C itself (orchestrator.launch.interrupts); Tune's handler would end fit() with exit 0 and restore advice
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")

WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_FORCE_GPU_ALLOW_GROWTH": "true", "PYTHONUNBUFFERED": "1"}
TRAINER_ENV, TRAINER_OPTIONS_ENV = "GNSWEEP_TRAINER", "GNSWEEP_TRAINER_OPTIONS"
DEFAULT_TRAINER = "trainer:train_trial"


@dataclass(frozen=True)
class TrainerChoice:
    """The function that trains each trial, as ``module:function``, and extra keyword arguments for it. The driver
    reads it once and sends it with every trial, so a worker on any node of any cluster runs the same function."""

    path: str = DEFAULT_TRAINER
    options: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ=os.environ) -> "TrainerChoice":
        """``trainer.train_trial`` unless ``GNSWEEP_TRAINER`` names another function with its signature and contract
        (the tests of the orchestration name a TensorFlow-free stand-in, tests/support/fake_trainer.py), with
        ``GNSWEEP_TRAINER_OPTIONS``, a JSON object, as its keyword arguments. Checks that the function imports;
        raises ValueError, one line naming the variable."""
        path = environ.get(TRAINER_ENV) or DEFAULT_TRAINER
        text = environ.get(TRAINER_OPTIONS_ENV) or "{}"
        try:
            options = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{TRAINER_OPTIONS_ENV}: not JSON ({e})") from None
        if not isinstance(options, dict):
            raise ValueError(f"{TRAINER_OPTIONS_ENV}: a JSON object of keyword arguments, not {text[:40]!r}")
        if options and path == DEFAULT_TRAINER:
            raise ValueError(f"{TRAINER_OPTIONS_ENV} is set but {TRAINER_ENV} is not: trainer.train_trial takes no "
                             f"extra options")
        choice = cls(path, options)
        choice.function()
        return choice

    def function(self):
        module, _, name = self.path.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as e:
            raise ValueError(f"{TRAINER_ENV}={self.path}: cannot import it as module:function ({e})") from None


def run_trial(config: dict) -> None:
    """The trainable: one trial on one resource bundle, resuming from its checkpoint directory on a retry."""
    import ray
    from ray import tune

    from trainer import TrialConfig
    from trainer.data.cache import local_dataset
    from trainer.storage import Location

    trial = TrialConfig.from_dict(config["trial"]["config"])
    node = ray.get_runtime_context().get_node_id()
    resources = tune.get_context().get_trial_resources().required_resources
    cpus = max(1, int(resources.get("CPU", 1)))
    gpu = float(resources.get("GPU", 0)) / trial.replicas  # each replica's share of its device: its memory limit

    from orchestrator.tune.metrics import TrialGauges

    gauges = TrialGauges(config.get("sweep", ""), config["trial"]["key"], trial.norm, trial.batch_size)

    def report(metrics) -> None:
        gauges.record(metrics.to_dict())
        tune.report({**metrics.to_dict(), "node": node})

    trainer = TrainerChoice(**config["trainer"])
    checkpoint_dir = Location.of(config["checkpoint_root"]) / trial.key
    with local_dataset(config["dataset_dir"]) as dataset_dir:  # a dataset in object storage: this node's copy
        trainer.function()(trial, dataset_dir, checkpoint_dir, report, cpus=cpus, gpu=gpu, **trainer.options)


class NamedByTrialKey:
    """Mixed into Tune's function trainable (through ``__mixins__``, Tune's hook for that): the actor's repr, which the
    Ray dashboard shows as the actor's name and which prefixes its log lines, becomes the trial key, so the dashboard
    tells which trial runs on which node instead of a row of ``run_trial`` actors."""

    def setup(self, config):
        self._name = config["trial"]["key"]
        super().setup(config)


run_trial.__mixins__ = (NamedByTrialKey,)


def placement_groups(spec):
    """Each trial's Ray request: one bundle of ``SweepSpec.trial_resources`` for its batch size."""
    from ray.tune import PlacementGroupFactory

    def resources(config: dict) -> PlacementGroupFactory:
        bundle = spec.trial_resources(config["trial"]["config"]["batch_size"])
        return PlacementGroupFactory([{k: v for k, v in bundle.items() if v}])

    return resources


def run_trials(spec, pending, *, sweep_dir, dataset_dir, callbacks: list,
               max_concurrent: int | None = None, trainable=run_trial, trainer: TrainerChoice | None = None):
    """Run ``pending`` planned trials on the connected Ray cluster, started in the order given (the launch puts the
    longest first: Tune's BasicVariantGenerator expands a single grid_search list in its order and its FIFO
    scheduler stages pending trials in that order); returns Tune's ResultGrid. ``sweep_dir`` is a
    ``trainer.storage.Location`` (or a local path); Tune keeps its own state there too. ``dataset_dir`` is a
    prepared directory every node sees, or a Location in object storage that each trial's node copies.
    ``trainable`` is replaceable for scheduling benchmarks; ``trainer`` is the function ``run_trial`` calls (by
    default as the environment chooses, ``TrainerChoice.from_env``)."""
    import logging

    from ray import tune

    from trainer.storage import Location

    # Tune's own result.json/progress.csv loggers are off (results go to Parquet), so the ResultGrid it builds at the
    # end would warn once per trial that it found no metrics: not a problem for gnsweep, and not the user's.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    storage = Location.of(sweep_dir)
    param_space = {
        "trial": tune.grid_search([{"key": t.key, "config": t.config.to_dict()} for t in pending]),
        "dataset_dir": str(dataset_dir),
        "sweep": spec.name,
        "checkpoint_root": str(storage / "checkpoints"),
        "trainer": asdict(trainer or TrainerChoice.from_env()),
    }
    tuner = tune.Tuner(
        tune.with_resources(trainable, placement_groups(spec)),
        param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=False,
                                    trial_name_creator=lambda t: t.config["trial"]["key"],
                                    trial_dirname_creator=lambda t: t.config["trial"]["key"]),
        run_config=tune.RunConfig(
            name="tune", storage_path=storage.path, storage_filesystem=storage.fs, callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    return tuner.fit()
