"""tests/eval: task data is found through the data root; point it at the project's shared data when present."""

import os

from tests.conftest import SHARED_DATA

if SHARED_DATA.is_dir():
    os.environ.setdefault("CROSSTUNE_DATA", str(SHARED_DATA))
