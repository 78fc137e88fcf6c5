"""One trial's training as a library: models, data preparation, the input pipeline, checkpoints, ``train_trial``.

Nothing here imports Ray. ``import trainer`` is cheap; TensorFlow loads when a model or pipeline is used.
"""
from trainer.config import EpochMetrics, TrainSettings, TrialConfig, TrialOutcome


def __getattr__(name: str):
    """``trainer.train_trial`` is ``trainer.train.train_trial`` itself (its signature and docstring), imported on
    first use so that ``import trainer`` stays cheap."""
    if name == "train_trial":
        from trainer.train import train_trial

        return train_trial
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")


__all__ = ["EpochMetrics", "TrainSettings", "TrialConfig", "TrialOutcome", "train_trial"]
