"""Malformed files and out-of-range options through every subcommand (issue 30, item 2): each is
refused with exactly one ``error:`` line and exit status 2, never a traceback; the inputs that are
fine after all (a UTF-8 byte-order mark, gzip content under a .csv name, a .csv.gz that was never
compressed, dates with daylight-saving UTC offsets) run with status 0."""

import gzip

import pytest
from test_backtest_api import prices

from totowalk.cli import main

RANDOM = ["--model", "random:toto-tiny", "--allow-random-weights"]
HUGE = str(10**20)

# Each data-reading command, small and fast on a tiny random model; {data} is the file under test.
COMMANDS = {
    "backtest": ["backtest", "--data", "{data}", "--sims", "2", "--samples", "8", "--no-progress", *RANDOM],
    "forecast": ["forecast", "--data", "{data}", "--samples", "8", *RANDOM],
    "evaluate": [
        "evaluate",
        "--data",
        "{data}",
        "--days",
        "5",
        "--min-history",
        "20",
        "--baselines",
        "random_walk",
        "--out",
        "{data}.evaluation",
        "--no-progress",
        *RANDOM,
    ],
    "samples": [
        "samples",
        "--data",
        "{data}",
        "--sims",
        "2",
        "--grid",
        "2,4",
        "--seeds",
        "1",
        "--no-progress",
        *RANDOM,
    ],
}


def _text(n=80, offsets=None):
    frame = prices(n, 1).rename_axis("Date").reset_index()
    if offsets is not None:  # local midnight with its UTC offset, as market-data downloaders write
        frame["Date"] = [f"{d:%Y-%m-%d} 00:00:00{offsets(d)}" for d in frame["Date"]]
    return frame.to_csv(index=False)


def _dst(day):
    return "-04:00" if 3 <= day.month <= 10 else "-05:00"


# name: (file content as bytes, or None for no file; the file's name; exit status; text in the error line)
FILES = {
    "empty file": (b"", "empty.csv", 2, "is empty (0 bytes)"),
    "header only": (
        b"Date,Open,High,Low,Close\n",
        "header.csv",
        2,
        "header.csv has a header (Date, Open, High, Low, Close) but no rows",
    ),
    "header only, with a symbol column": (
        b"Date,Ticker,Open,High,Low,Close\n",
        "panel.csv",
        2,
        "panel.csv has a header (Date, Ticker, Open, High, Low, Close) but no rows",
    ),
    "whitespace only": (b"\n\n", "blank.csv", 2, "holds no text"),
    "UTF-8 byte-order mark": (b"\xef\xbb\xbf" + _text().encode(), "bom.csv", 0, None),
    "semicolons": (_text().replace(",", ";").encode(), "semi.csv", 2, "looks semicolon-separated"),
    "tabs": (_text().replace(",", "\t").encode(), "tabs.csv", 2, "looks tab-separated"),
    "gzip named .csv": (gzip.compress(_text().encode()), "zipped.csv", 0, None),
    "plain text named .csv.gz": (_text().encode(), "plain.csv.gz", 0, None),
    "binary named .csv.gz": (bytes(range(256)) * 4, "binary.csv.gz", 2, "not UTF-8 text"),
    "text named .parquet": (_text().encode(), "text.parquet", 2, "is not a readable Parquet file"),
    "truncated gzip": (gzip.compress(_text().encode())[:200], "cut.csv.gz", 2, "truncated or damaged gzip"),
    "daylight-saving offsets": (_text(300, _dst).encode(), "dst.csv", 0, None),
    "two columns naming Close": (
        prices(80, 1).rename_axis("Date").reset_index().assign(close=1.0).to_csv(index=False).encode(),
        "twice.csv",
        2,
        "columns 'Close', 'close' all name Close",
    ),
    "missing file": (None, "missing.csv", 2, "price file not found"),
    "a folder": ("folder", "folder", 2, "is a folder"),
}

# command: [(bad option values, text in the error line)]
OPTIONS = {
    "backtest": [
        (["--progress=yes"], "argument --progress/--no-progress: ignored explicit argument 'yes'"),
        (["--sims", "0"], "argument --sims: must be >= 1, got 0"),
        (["--start", "2023-01-01", "--end", "2022-01-01"], "--start 2023-01-01 is after --end 2022-01-01"),
        (
            ["--symbols", "AAA,,BBB"],
            "argument --symbol/--symbols: expected symbols separated by commas, got 'AAA,,BBB'",
        ),
        (["--symbol", "AAA,"], "argument --symbol/--symbols: expected symbols separated by commas, got 'AAA,'"),
        (["--sims", "-3"], "argument --sims: must be >= 1, got -3"),
        (["--sims", HUGE], "argument --sims: must be at most 2147483647"),
        (["--seed", "-1"], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--seed", HUGE], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--seed", str(2**63)], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--seed", "1.5"], "argument --seed: expected a whole number"),
        (["--samples", "0"], "argument --samples: must be >= 1, got 0"),
        (["--host-workers", "-1"], "argument --host-workers: must be between 0 and 256, got -1"),
        (["--host-workers", "2.5"], "argument --host-workers: expected a whole number"),
        (["--host-workers", "many"], "argument --host-workers: expected a whole number >= 0 or 'auto'"),
        (["--outputs-process", "yes"], "argument --outputs-process: invalid choice: 'yes'"),
        (["--fee", "nan"], "argument --fee: must be a finite number, got 'nan'"),
        (["--fee", "inf"], "argument --fee: must be a finite number, got 'inf'"),
        (["--fee", "-0.1"], "argument --fee: must be a fraction in [0, 1)"),
        (["--spread", "nan"], "argument --spread: a bid/ask ratio must be finite and >= 1"),
        (["--spread", "inf"], "argument --spread: a bid/ask ratio must be finite and >= 1"),
        (["--spread=-Infinity"], "argument --spread: a bid/ask ratio must be finite and >= 1"),
        (["--spread", "0.5"], "argument --spread: a bid/ask ratio must be finite and >= 1"),
    ],
    "forecast": [
        (["--seed", "-1"], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--seed", HUGE], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--samples", "0"], "argument --samples/--num-samples: must be >= 1, got 0"),
        (["--samples", HUGE], "argument --samples/--num-samples: must be at most"),
        (["--prediction-length", "-3"], "argument --prediction-length: must be >= 1, got -3"),
    ],
    "evaluate": [
        (["--progress=yes"], "argument --progress/--no-progress: ignored explicit argument 'yes'"),
        (["--days", "0"], "argument --days: must be >= 1, got 0"),
        (["--min-history", HUGE], "argument --min-history: must be at most"),
        (["--seed", "-1"], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--keys", "Volume"], "argument --keys: invalid choice: 'Volume'"),
        (["--baselines", "arima"], "argument --baselines: invalid choice: 'arima'"),
    ],
    "samples": [
        (["--progress=yes"], "argument --progress/--no-progress: ignored explicit argument 'yes'"),
        (["--sims", "0"], "argument --sims: must be >= 1, got 0"),
        (["--sims", HUGE], "argument --sims: must be at most"),
        (["--seed", "-1"], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--seed", HUGE], "argument --seed: must be a whole number in [0, 2**63)"),
        (["--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
    ],
}

# Commands that read no price file: (argv with {good}, {file} and {folder} placeholders, text in the error line)
OTHERS = {
    "quality --simulations 0": (["quality", "--precision", "int8", "--simulations", "0"], "argument --simulations"),
    "quality --samples 10**20": (["quality", "--precision", "int8", "--samples", HUGE], "argument --samples"),
    "quality --seed -1": (["quality", "--precision", "int8", "--seed", "-1"], "argument --seed"),
    "quality --floor-seed 10**20": (["quality", "--precision", "int8", "--floor-seed", HUGE], "argument --floor-seed"),
    "quality --max-z-shift nan": (["quality", "--precision", "int8", "--max-z-shift", "nan"], "argument --max-z-shift"),
    "bench --repeats 0": (["bench", "W1-small", "--repeats", "0"], "argument --repeats: must be >= 1"),
    "bench --w2-series -3": (["bench", "W2", "--w2-series", "-3"], "argument --w2-series: must be >= 1"),
    "bench --reference-calls 10**20": (["bench", "--reference-calls", HUGE], "argument --reference-calls"),
    "bench unknown workload": (["bench", "W9"], "unknown workload(s) W9"),
    "report missing folder": (["report", "{folder}/nope"], "argument RUN_DIR: no such folder"),
    "report a file": (["report", "{file}"], "argument RUN_DIR: {file} is a file"),
    "report empty folder": (["report", "{folder}"], "not a finished totowalk run folder"),
    "quantize missing model": (["quantize", "{folder}/nope", "{folder}/out"], "cannot load model"),
    "quantize onto a file": (["quantize", "toto-mini", "{file}"], "already exists"),
    "info unknown option": (["info", "--seed", "1"], "unrecognized arguments: --seed 1"),
}


@pytest.fixture()
def where(tmp_path):
    (tmp_path / "folder").mkdir()
    good = tmp_path / "good.csv"
    good.write_text(_text())
    return {"tmp": tmp_path, "folder": str(tmp_path / "folder"), "file": str(good), "good": str(good)}


def _data_file(where, case) -> str:
    content, name, _, _ = FILES[case]
    path = where["tmp"] / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "folder":
        path.mkdir(exist_ok=True)
    return str(path)


def _check(argv, status, expected, capsys):
    """The exit status; for 2, exactly one `error:` line (WARNING: lines allowed) holding ``expected``."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if not line.startswith("WARNING:")]
    assert rc == status, err
    if status == 0:
        assert not any(line.startswith("error:") for line in errors), err
        return
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    assert expected in errors[0], errors[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", list(FILES))
def test_malformed_files_are_one_error_line(command, case, where, capsys):
    path = _data_file(where, case)
    _, _, status, expected = FILES[case]
    argv = [a.format(data=path) for a in COMMANDS[command]]
    _check(argv, status, expected, capsys)


@pytest.mark.parametrize(
    "command, bad, expected",
    [(command, bad, expected) for command, cases in OPTIONS.items() for bad, expected in cases],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_out_of_range_options_are_one_error_line(command, bad, expected, where, capsys):
    argv = [a.format(data=where["good"]) for a in COMMANDS[command]] + bad
    _check(argv, 2, expected, capsys)


@pytest.mark.parametrize("case", sorted(OTHERS))
def test_other_commands_refuse_bad_arguments_in_one_line(case, where, capsys):
    argv, expected = OTHERS[case]
    _check([a.format(**where) for a in argv], 2, expected.format(**where), capsys)


def test_daylight_saving_offsets_give_the_local_dates(where):
    from totowalk.data import load_prices

    path = where["tmp"] / "dst.csv"
    path.write_text(_text(300, _dst))
    frame = load_prices(path)
    assert frame.index.tz is None
    assert list(frame.index) == list(prices(300, 1).index)  # the calendar dates as written, none shifted
