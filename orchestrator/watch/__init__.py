"""Looking at a sweep from outside its launch: ``status`` prints one line per trial from the results store, ``live``
redraws it until the sweep ends (``gnsweep status NAME --watch``). Read only: nothing here writes results.
"""
