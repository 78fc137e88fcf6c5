"""Looking at a sweep from outside its launch: ``tally`` counts its trials and time left (the one count that
``status``, ``live`` and the launch's progress line print), ``status`` prints one line per trial from the results
store, ``live`` redraws it until the sweep ends (``gnsweep status NAME --watch``). Read only: nothing here writes
results.
"""
