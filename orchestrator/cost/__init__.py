"""What a sweep costs before and while it runs: each trial's estimated time and peak memory (``estimate``,
``packing``), the devices it runs on (``devices``, ``calibration``, ``calibrate``), the order and wall time of the
schedule (``schedule``), the time left of a running sweep (``remaining``), and the dry run and ``plan.json`` that
put these together (``costs``). Nothing here starts a trial; only ``calibrate`` trains, to measure.
"""
