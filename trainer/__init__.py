"""One trial's training as a library: models, data preparation, the input pipeline, checkpoints, ``train_trial``.

Nothing here imports Ray. ``import trainer`` is cheap; TensorFlow loads when a model or pipeline is used.
"""
from trainer.config import EpochMetrics, TrainSettings, TrialConfig, TrialOutcome


def train_trial(*args, **kwargs):
    """See ``trainer.train.train_trial``."""
    from trainer.train import train_trial as _train_trial

    return _train_trial(*args, **kwargs)


__all__ = ["EpochMetrics", "TrainSettings", "TrialConfig", "TrialOutcome", "train_trial"]
