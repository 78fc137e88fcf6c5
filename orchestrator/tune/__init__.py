"""The Ray Tune glue, and the only place that knows Tune: ``run`` turns planned trials into one Tune run (resources,
retries, resume from checkpoints) over ``trainer.train_trial``; ``results_writer`` is the driver-side callback that
writes each reported epoch and each ended trial to the results store; ``metrics`` exports Ray gauges; ``progress``
prints one line per event; ``stop`` ends Tune's loop at its next step after Ctrl-C or SIGTERM.
"""
