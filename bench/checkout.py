"""The benches measure the code of their own checkout, not the picloud the
environment has installed (a shared virtualenv may point at another
checkout). Imported by harness before anything imports picloud: the
checkout goes first on the path, and Ray hands the driver's path to its
workers."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path[:2]:
    sys.path.insert(1, ROOT)
