"""The tables and forecast plots written by a separate process while the run computes its later
chunks (report/background.py): the same bytes as written after the run, a fallback that loses
nothing when that process fails, and an interruption that leaves no partial file and resumes to the
same tables."""

import json
import queue
import re
import warnings

import pytest

from totowalk import devices
from totowalk.backtest.forecast.store import FORECASTS, PARTS, RunStore
from totowalk.backtest.forecast.tables import StoredPart
from totowalk.backtest.report.background import BackgroundOutputs, Written
from totowalk.cli import main

RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights"]
DATA = ["--dataset", "us-stocks-daily", "--symbol", "IBM,AAPL,MSFT"]
# a chunk per symbol: three parts, the process started by the first
RUN = ["backtest", *DATA, "--end", "2001-06-30", "--sims", "4", "--no-progress", "--chunk-contexts", "1", *RANDOM]


class Interrupt(Exception):
    pass


def _files(folder):
    """{name: bytes} of a run folder's outputs, without what differs run to run: summary.json's
    timings, and the commit in it and in the report (a working tree edited while tests run)."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != "summary.json":
            out[path.name] = path.read_bytes()
    out["report.html"] = re.sub(rb"<th>commit</th><td>[^<]*</td>", b"", out["report.html"])
    summary = json.loads((folder / "summary.json").read_text())
    summary.pop("timings")
    summary["versions"].pop("commit", None)
    summary["outputs"].pop("written_beside_run", None)
    out["summary.json"] = summary
    return out


@pytest.fixture(scope="module", params=["csv", "parquet"])
def written_here(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("here") / "run"
    assert main([*RUN, "--out", str(out), "--tables", request.param, "--outputs-process", "off"]) == 0
    return request.param, out


def test_the_process_writes_the_bytes_written_after_the_run(tmp_path, written_here):
    fmt, here = written_here
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out), "--tables", fmt, "--outputs-process", "on"]) == 0
    beside = json.loads((out / "summary.json").read_text())["outputs"]["written_beside_run"]
    assert beside["cpu_seconds"] > 0 and beside["peak_rss_mib"] > 0  # the process did write them
    assert "written_beside_run" not in json.loads((here / "summary.json").read_text())["outputs"]
    got, want = _files(out), _files(here)
    assert sorted(got) == sorted(want)
    assert {f"simulations.{fmt}", f"forecasts.{fmt}", "forecast_vs_actual_AAPL.png", "report.html"} <= set(got)
    for name in want:
        assert got[name] == want[name], name
    assert not list(out.glob("*.partial")) and not (out / PARTS).exists() and not (out / FORECASTS).exists()


def test_a_failed_process_leaves_write_outputs_to_write_everything(tmp_path, monkeypatch, capsys, written_here):
    fmt, here = written_here
    out = tmp_path / "run"
    real = BackgroundOutputs.part_saved

    def dying(self, part):
        real(self, part)
        if part.index == 1:  # it dies in the middle of the run
            self._process.kill()
            self._process.join()

    monkeypatch.setattr(BackgroundOutputs, "part_saved", dying)
    assert main([*RUN, "--out", str(out), "--tables", fmt, "--outputs-process", "on"]) == 0
    assert "the outputs process' files are not used (it stopped with exit code" in capsys.readouterr().err
    assert "written_beside_run" not in json.loads((out / "summary.json").read_text())["outputs"]
    got, want = _files(out), _files(here)
    for name in want:
        assert got[name] == want[name], name
    assert not list(out.glob("*.partial"))


@pytest.mark.parametrize("phase", ["strategies", "moving the tables"])
def test_an_interruption_stops_the_process_and_resume_gives_the_same_tables(tmp_path, monkeypatch, written_here, phase):
    fmt, here = written_here
    out = tmp_path / "run"
    argv = [*RUN, "--out", str(out), "--tables", fmt, "--outputs-process", "on"]
    with monkeypatch.context() as patch:
        if phase == "strategies":
            real_save = RunStore.save_part

            def failing_save(self, index, symbols, tables):
                if index == 2:  # the process has chunks 0 and 1
                    raise Interrupt(phase)
                real_save(self, index, symbols, tables)

            patch.setattr(RunStore, "save_part", failing_save)
        else:

            def failing_commit(self):
                raise Interrupt(phase)

            patch.setattr(Written, "commit_tables", failing_commit)
        with pytest.raises(Interrupt):
            main(argv)
    assert not list(out.glob("*.partial"))  # the process stopped, its partial files gone
    assert main([*argv, "--resume"]) == 0
    for name in (f"simulations.{fmt}", f"forecasts.{fmt}", f"daily_returns.{fmt}"):
        assert (out / name).read_bytes() == (here / name).read_bytes(), name


def _part(index=0, chunks=2):
    return StoredPart(index, chunks, ["A"], {}, {"symbols": ["A"], "num_simulations": 1, "keys": ["Close"]})


def test_auto_starts_a_process_only_for_several_chunks_on_a_host_with_cores_to_spare(tmp_path, monkeypatch):
    started = []

    def spawn(self, part):  # what a started writer holds, without its process
        started.append(part.index)
        self._process, self._commands = "a process", queue.Queue()

    monkeypatch.setattr(BackgroundOutputs, "_spawn", spawn)
    for cores, chunks, when, expected in [
        (2, 8, "auto", []),
        (8, 1, "auto", []),
        (8, 2, "auto", [0]),
        (2, 1, "on", [0]),
        (8, 8, "off", []),
    ]:
        started.clear()
        monkeypatch.setattr(devices, "host_cores", lambda cores=cores: cores)
        writer = BackgroundOutputs(tmp_path, when=when)
        writer.part_saved(_part(0, chunks))
        assert started == expected, (cores, chunks, when)
    with pytest.raises(ValueError, match="when must be one of"):
        BackgroundOutputs(tmp_path, when="sometimes")


def test_a_writer_not_started_leaves_everything_to_write_outputs(tmp_path):
    writer = BackgroundOutputs(tmp_path, when="off")
    writer.part_saved(_part())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: nothing was started, nothing is given up
        assert writer.finish(result=None, out_dir=tmp_path, tables="auto", plot_symbols=12) is None
