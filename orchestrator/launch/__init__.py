"""Running a sweep from this process: ``launcher`` validates, plans and runs the pending trials on Ray; ``lock`` keeps
one launch per sweep (``launch.json``); ``network`` keeps a local Ray and its dashboard on loopback; ``cluster`` checks
that every node sees the data and results; ``interrupts`` turns Ctrl-C and SIGTERM into a clean stop; ``quiet``
keeps TensorFlow's and Ray's native chatter off the terminal.
"""
