"""One process writes a run folder at a time: a second command given the same folder is refused at
once, the hold is re-entrant within a process, and it leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

import totowalk as tw
from totowalk.backtest.forecast.folder_lock import FolderInUse, run_folder_lock
from totowalk.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX's")

HOLDER = """
import sys, time
from totowalk.backtest.forecast.folder_lock import run_folder_lock
with run_folder_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()  # until the test lets go
"""


@pytest.fixture
def held(tmp_path):
    """``tmp_path / "run"`` held by another process for the test's duration."""
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    yield folder
    holder.communicate("\n", timeout=60)


def test_a_folder_another_process_holds_is_refused_and_free_once_it_ends(held):
    with pytest.raises(FolderInUse, match="in use by another totowalk run"):
        with run_folder_lock(held):
            pass


def test_within_a_process_the_hold_is_reentrant_and_leaves_nothing(tmp_path):
    folder = tmp_path / "new" / "run"
    with run_folder_lock(folder):
        with run_folder_lock(folder):  # the command holds it, then backtest() again
            assert folder.is_dir()
        done = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], input="\n", capture_output=True, text=True)
        assert "in use by another totowalk run" in done.stderr  # still held by the outer block
    assert not folder.exists()  # made for the block and left empty: gone again
    (tmp_path / "kept").mkdir()
    with run_folder_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "file").write_text("x")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["file"]  # no lock file left
    done = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], input="\n", capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "held"  # free once let go


def test_backtest_and_the_commands_refuse_a_folder_in_use(held, capsys):
    from test_backtest_api import mean5, prices

    with pytest.raises(FolderInUse):
        tw.backtest({"A": prices(40, 1)}, num_simulations=2, forecaster=mean5, out_dir=held)
    random = ["--model", "random:toto-tiny", "--allow-random-weights", "--no-progress"]
    assert main(["backtest", "--dataset", "IBM", "--sims", "2", "--out", str(held), *random]) == 2
    assert f"error: {held} is in use by another totowalk run" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "IBM", "--days", "5", "--out", str(held), *random]) == 2
    assert "is in use by another totowalk run" in capsys.readouterr().err
    assert main(["report", str(held)]) == 2  # nor rebuilt from files a run is writing
    assert "is in use by another totowalk run" in capsys.readouterr().err


def test_a_file_system_without_flock_runs_unheld(tmp_path, monkeypatch):
    import errno

    from totowalk.backtest.forecast import folder_lock

    def unsupported(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(folder_lock.fcntl, "flock", unsupported)
    with run_folder_lock(tmp_path / "nfs"):
        with run_folder_lock(tmp_path / "nfs"):
            (tmp_path / "nfs" / "file").write_text("x")
    assert (tmp_path / "nfs" / "file").is_file() and not folder_lock._held
