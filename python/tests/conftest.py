"""Shared set-up: the package under test is the one in this checkout when
it is built in place, else the installed one (``make python``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
