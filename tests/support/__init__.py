"""Helpers shared by the tests, imported as ``tests.support.<module>`` (pytest puts the repository root on sys.path,
``pythonpath`` in pyproject.toml; tests/conftest.py puts it on the PYTHONPATH of every process the tests start):

- ``cli``: the ``gnsweep`` command line as a subprocess (``gnsweep``, ``GNSWEEP``), the environment tests give it
  (``process_env``), small sweep specs (``write_spec``), the fake trainer's variables (``fake_trainer_env``).
- ``launches``: ``gnsweep launch`` in a session of its own (``Launch``), its processes and Ray workers, polling that
  fails as soon as the process exits (``wait_until``), readers of the results while a sweep writes them.
- ``fake_trainer``: ``train_trial`` without TensorFlow, for launches that test the orchestration, not the model.
- ``local_ray``: one local Ray cluster that launches join with ``--address`` (the ``shared_ray`` fixture).
- ``run_shared``: what the pytest-xdist workers of one run share, made once by the first that needs it: the
  ``shared_ray`` cluster and the prepared datasets (``digits_dataset``, ``sample_dataset``).
- ``s3``: moto's S3 server on 127.0.0.1 with one bucket (the ``bucket`` fixture).

A launch that tests the orchestration trains with the fake trainer and, unless it must own its Ray (it kills Ray,
signals the launch, or checks what Ray exposes or leaves behind), joins the shared cluster::

    launch = Launch(spec, root / "results", cwd=root, ray=shared_ray,
                    extra_env=fake_trainer_env(step_seconds=0.05, hang={"gn-b64-g8-s0": 2}))
    run = gnsweep("launch", spec, "--results", results, "--address", shared_ray.address, cwd=root,
                  env={**shared_ray.join_env, **fake_trainer_env()})
"""
