"""Helpers shared by the tests, imported as ``tests.support.<module>`` (pytest puts the repository root on sys.path:
``pythonpath`` in pyproject.toml; the launches it starts get it through ``PYTHONPATH``):

- ``cli``: the ``gnsweep`` command line as a subprocess, the environment tests give it, sweep specs.
- ``launches``: ``gnsweep launch`` in a session of its own, its processes and Ray workers, readers that poll the results.
- ``fake_trainer``: ``train_trial`` without TensorFlow, for launches that test the orchestration, not the model.
- ``local_ray``: one local Ray cluster that launches join with ``--address`` (the ``shared_ray`` fixture).
"""
