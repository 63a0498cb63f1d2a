"""No import cycle between crosstune's parts (scripts/check_imports.py): `models` does not import `data`, `eval`
does not import `report`, and so on; a lazy import inside a function counts too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check_imports.py"


def test_no_import_cycle_between_parts():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert "import cycles between crosstune's parts: 0" in proc.stdout


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "crosstune"
    for part, body in {"a": "def f():\n    from crosstune.b.y import g\n", "b": "", "c": "import os\n"}.items():
        (pkg / part).mkdir(parents=True)
        (pkg / part / "__init__.py").write_text(body)
    (pkg / "b" / "y.py").write_text("from ..a import f\nfrom typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from crosstune.c import os\n")
    (pkg / "c" / "z.py").write_text("from crosstune.b import y\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(pkg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "a -> b -> a" in proc.stdout and "import cycles between crosstune's parts: 1" in proc.stdout
