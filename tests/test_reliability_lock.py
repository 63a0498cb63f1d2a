"""The run-folder lock against a real second process: refuse with a clear message, or wait, and nest in-process."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from crosstune.errors import CrosstuneError
from crosstune.locks import folder_lock

HOLD = ("import sys, time; from crosstune.locks import folder_lock\n"
        "with folder_lock(sys.argv[1], 'run'):\n"
        "    print('held', flush=True); sys.stdin.readline()\n")


@pytest.fixture
def holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_second_process_refused_with_holder_named(tmp_path, holder):
    with pytest.raises(CrosstuneError) as e:
        with folder_lock(tmp_path / "out", "eval generate"):
            pass
    msg = str(e.value)
    assert f"pid {holder.pid}" in msg and "`crosstune run`" in msg and "another --out" in msg


def test_second_process_waits_then_proceeds(tmp_path, holder):
    threading.Timer(0.5, holder.stdin.close).start()  # the holder finishes while we wait
    with folder_lock(tmp_path / "out", "run", wait=60) as folder:
        assert folder == tmp_path / "out"
    assert holder.wait(timeout=30) == 0


def test_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    holder.kill()
    holder.wait(timeout=30)
    with folder_lock(tmp_path / "out", "run"):
        pass


def test_nested_in_one_process_and_released(tmp_path):
    with folder_lock(tmp_path, "run"):
        with folder_lock(tmp_path, "eval generate"):
            pass
    proc = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path)], input="\n", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "held" in proc.stdout
