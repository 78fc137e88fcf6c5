"""Moved to ``tests.support.launches`` and ``tests.support.cli``; this module stays so that tests written against
it (``from launches import ...``, tests/faults being on sys.path) still import. New tests import tests.support.*."""
from tests.support.cli import GNSWEEP, gnsweep, write_spec  # noqa: F401
from tests.support.cli import process_env as env  # noqa: F401
from tests.support.launches import *  # noqa: F401,F403
