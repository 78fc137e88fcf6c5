"""The two Parquet tables of a sweep. One schema constant per table; columns are only ever added, never retyped."""
from __future__ import annotations

from enum import StrEnum

import pyarrow as pa

CONFIG_FIELDS = [
    pa.field("sweep", pa.string()),
    pa.field("trial_key", pa.string()),
    pa.field("model", pa.string()),
    pa.field("norm", pa.string()),
    pa.field("batch_size", pa.int32()),
    pa.field("groups", pa.int32()),  # null unless gn with a group count
    pa.field("channels_per_group", pa.int32()),  # null unless gn with channels per group
    pa.field("seed", pa.int32()),
]

# results/<sweep>/epochs/: one row per (trial_key, epoch). Errors are percentages.
EPOCH_SCHEMA = pa.schema(CONFIG_FIELDS + [
    pa.field("epoch", pa.int32()),  # 1-based
    pa.field("train_loss", pa.float64()),
    pa.field("train_err", pa.float64()),
    pa.field("val_loss", pa.float64()),
    pa.field("val_err", pa.float64()),
    pa.field("val_err_top5", pa.float64()),
    pa.field("lr", pa.float64()),
    pa.field("epoch_seconds", pa.float64()),
    pa.field("images_per_second", pa.float64()),
    pa.field("attempt", pa.int32()),  # 0 for the first run of the trial, +1 per retry or relaunch
    pa.field("node", pa.string()),
    pa.field("recorded_at", pa.timestamp("ms", tz="UTC")),
    pa.field("precision", pa.string()),  # float32, mixed_bfloat16 or mixed_float16 (null in sweeps before it)
])



class TrialStatus(StrEnum):
    """A trial's ``status`` in the trials table, the one list of them; Parquet keeps the plain string."""

    PENDING = "pending"  # planned, not started
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # raised after its retries; a relaunch runs it again
    DIVERGED = "diverged"  # its loss became NaN or infinite
    INTERRUPTED = "interrupted"  # the launch was stopped; a relaunch resumes it
    UNKNOWN = "unknown"  # read side only: epochs recorded but no trials row


ENDED = frozenset({TrialStatus.COMPLETED, TrialStatus.DIVERGED, TrialStatus.FAILED})  # nothing left in this launch
FINISHED = frozenset({TrialStatus.COMPLETED, TrialStatus.DIVERGED})  # never run again; it has a final error
UNFINISHED = frozenset(TrialStatus) - ENDED  # the sweep still has work: pending, running, interrupted, unknown
STOPPED = frozenset({TrialStatus.FAILED, TrialStatus.DIVERGED, TrialStatus.INTERRUPTED})  # stopped before completing
IN_PROGRESS = UNFINISHED - STOPPED  # running or waiting to run (or epochs without a trials row yet)

# results/<sweep>/trials/: one row per trial, rewritten when its status changes.
TRIAL_SCHEMA = pa.schema(CONFIG_FIELDS + [
    pa.field("status", pa.string()),  # a TrialStatus
    pa.field("epochs", pa.int32()),  # epochs done
    pa.field("final_val_err", pa.float64()),  # trainer.config.final_error of the val_err column
    pa.field("best_val_err", pa.float64()),
    pa.field("error", pa.string()),  # message, or null
    pa.field("studies", pa.list_(pa.string())),
    pa.field("attempts", pa.int32()),
    pa.field("started_at", pa.timestamp("ms", tz="UTC")),
    pa.field("ended_at", pa.timestamp("ms", tz="UTC")),
    pa.field("train_seconds", pa.float64()),  # sum of epoch_seconds
    pa.field("precision", pa.string()),  # float32, mixed_bfloat16 or mixed_float16 (null in sweeps before it)
    pa.field("same_as", pa.string()),  # the trial whose run computed this one's figures (GN with G = 1 is LN), or null
])

# <report dir>/claims.parquet: one row per paper claim checked (and per part of one made of several), written by
# `gnsweep report` from the same records as the report's Findings. Differences are in points (percentage points of
# top-1 error); low and high bound the measured value's 95% interval (results.uncertainty).
CLAIM_SCHEMA = pa.schema([
    pa.field("claim", pa.string()),  # what the paper says, as checked here
    pa.field("study", pa.string()),
    pa.field("topic", pa.string()),  # results.report.TOPICS
    pa.field("measured", pa.float64()),  # the value of ``quantity``; null when a configuration has no run
    pa.field("low", pa.float64()),
    pa.field("high", pa.float64()),
    pa.field("paper", pa.float64()),  # the same quantity in the paper (ResNet-50, ImageNet); null where it has none
    pa.field("verdict", pa.string()),  # one of results.verdicts.VERDICTS
    pa.field("seeds", pa.int32()),  # the fewest seeds of any configuration it compares
    pa.field("epochs", pa.int32()),  # the fewest epochs of any of its trials
    pa.field("would_decide", pa.string()),  # for an open verdict: the seeds or images, or the wait, that would decide
    pa.field("quantity", pa.string()),  # what ``measured`` is, e.g. "GN b2 - BN b2"
    pa.field("method", pa.string()),  # how the seeds entered the interval (paired, pooled, one seed)
    pa.field("tolerance", pa.float64()),  # a no-change claim's tolerance in points; null for the others
    pa.field("images", pa.int32()),  # validation (training, for training errors) images; null where unknown
    pa.field("part_of", pa.string()),  # the claim this row is one part of (an order's pairs); null for a claim
])

# Columns added after the first release: files written before them lack them and read back as null there. Every
# other column must be in every file (a file without them is not one of these tables).
ADDED_LATER: frozenset[str] = frozenset({"precision", "same_as"})
