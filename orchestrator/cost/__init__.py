"""What a sweep costs before and while it runs: each trial's estimated time and peak memory (``estimate``,
``packing``), the devices it runs on (``devices``, ``calibration``, ``calibrate``), the order and wall time of the
schedule (``schedule``), the time left of a running sweep (``remaining``), and the dry run and ``plan.json`` that
put these together (``costs``). Nothing here starts a trial; only ``calibrate`` trains, to measure.
"""
from orchestrator.cost.costs import SweepRemaining, dry_run_lines, order_and_record, sweep_remaining
from orchestrator.cost.estimate import DataShape, Estimator, TrialEstimate, data_shape
from orchestrator.cost.packing import memory_warnings

__all__ = ["DataShape", "Estimator", "SweepRemaining", "TrialEstimate", "data_shape", "dry_run_lines",
           "memory_warnings", "order_and_record", "sweep_remaining"]
