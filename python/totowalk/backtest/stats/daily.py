"""The daily walk-forward series: each simulation's final day, in date order, each day once.

Simulation k's window ends k rows before the newest, so the final days of a symbol's K
simulations are K distinct trading days. In the clean profile a final day is the out-of-sample
next step, traded with forecasts and walk-forward fits from earlier rows only; in the legacy
profile it is the classic ``*_finalday`` field (stale 7th forecast, in-sample offsets, and the
window average for entry+takeprofit and highlow: LEGACY_SEMANTICS §11.1, §11.3, §11.7).

Long table, one row per (symbol, strategy, date): ``return`` (net return of the day),
``turnover`` (units of position change traded that day; NaN where the rows do not record it,
i.e. legacy), ``in_market`` (1 when the strategy held a position that day, 0 when flat; a
fraction for the portfolio), and ``return_adverse`` / ``return_optimistic``: the same day booked by
the fill bracket's bounds (clean; equal to ``return`` where nothing was left open by the bar; NaN
in legacy). The equal-weight portfolio across symbols is the symbol :data:`PORTFOLIO`, built on the
common calendar: a portfolio day exists only where every symbol has that day, and is the mean over
them. Symbols whose data end on different dates would otherwise splice one symbol's days onto
another's and annualise the patchwork as one series; :func:`calendar_warning` says when the
symbols' days differ and how many the portfolio rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...memory import release_free_memory
from ..forecast.forecast_table import labels_at

__all__ = [
    "BOUNDS",
    "PORTFOLIO",
    "DAILY_COLUMNS",
    "calendar_warning",
    "final_day_table",
    "daily_table",
    "portfolio_table",
    "wide",
    "wide_fields",
    "wide_series",
    "WideSeries",
    "SERIES_FIELDS",
    "with_portfolio",
]

PORTFOLIO = "(all)"  # the equal-weight portfolio; also the label of the summary's overall row
DAILY_COLUMNS = ("date", "symbol", "strategy", "return", "turnover", "in_market", "return_adverse", "return_optimistic")
BOUNDS = ("adverse", "optimistic")  # the fill bracket: the same orders booked by each bound
MOST_NAMED = 8  # symbols a warning names; a universe's are in its files


def _final_day_column(frame: pd.DataFrame, prefix: str) -> str | None:
    for name in (f"{prefix}_finalday", f"{prefix}_finalday_return"):
        if name in frame:
            return name
    return None


def _in_market(frame: pd.DataFrame, prefix: str, returns: np.ndarray, turnover: np.ndarray) -> np.ndarray:
    """Whether the final day held a position: the signal position when recorded; else (limit
    orders open and close within the day) whether anything traded; legacy rows record neither,
    so a non-zero return stands for a position."""
    final = f"{prefix}_finalday_position"  # a strategy whose state runs across days records it
    if final in frame:
        return (frame[final].to_numpy(np.float64) != 0).astype(np.float64)
    positions = f"{prefix}_positions"
    if positions in frame:
        last = np.fromiter((p[-1] for p in frame[positions]), dtype=np.float64, count=len(frame))
        return (last != 0).astype(np.float64)  # compared as one array, not a numpy scalar a row
    if np.isfinite(turnover).all():
        return (turnover > 0).astype(np.float64)
    return (returns != 0).astype(np.float64)


def _bounds(frame: pd.DataFrame, prefix: str, returns: np.ndarray, bracketed: bool) -> list:
    """The final day's return booked by each fill bound: the recorded ``<prefix>_finalday_<bound>``;
    the return itself for a strategy without one in rows that record bounds (``bracketed``: nothing
    in its fills for the bar to leave open); NaN in rows that record none (the legacy profile)."""
    out = []
    for bound in BOUNDS:
        name = f"{prefix}_finalday_{bound}"
        if name in frame:
            out.append(pd.to_numeric(frame[name]).to_numpy(np.float64))
        else:
            out.append(returns if bracketed else np.full(len(frame), np.nan))
    return out


def _strategy_columns(simulations: pd.DataFrame, strategies) -> list:
    """(prefix, returns, turnover, in_market, adverse, optimistic) of every strategy of
    ``strategies`` (run order) with a final-day field."""
    columns = []
    bracketed = any(str(c).endswith("_finalday_adverse") for c in simulations.columns)
    for prefix in strategies:
        column = _final_day_column(simulations, prefix)
        if column is None:
            continue
        returns = pd.to_numeric(simulations[column]).to_numpy(np.float64)
        name = f"{prefix}_finalday_turnover"
        turnover = (
            pd.to_numeric(simulations[name]).to_numpy(np.float64)
            if name in simulations
            else np.full(len(simulations), np.nan)
        )
        columns.append(
            (
                prefix,
                returns,
                turnover,
                _in_market(simulations, prefix, returns, turnover),
                *_bounds(simulations, prefix, returns, bracketed),
            )
        )
    return columns


def _symbol_date_order(simulations: pd.DataFrame) -> tuple:
    """Row order by (symbol in order of appearance, date), each row's symbol code (in the rows' own
    order) and the symbols; raises ValueError when a symbol has two simulations on one date (a day
    counted twice)."""
    codes, symbols = _codes(simulations["symbol"])  # in the column's own storage: no Python string a row
    if (codes < 0).any():
        raise ValueError(f"result row {int(np.argmax(codes < 0))} names no symbol")
    dates = simulations["date"].to_numpy()
    order = np.lexsort((dates, codes))
    same = (codes[order][1:] == codes[order][:-1]) & (dates[order][1:] == dates[order][:-1])
    if same.any():
        row = order[1:][np.argmax(same)]
        raise ValueError(
            f"symbol {symbols[codes[row]]!r} has two simulations ending on {simulations['date'].iloc[row]}"
        )
    return order, codes, symbols


def final_day_table(simulations: pd.DataFrame, strategies) -> pd.DataFrame:
    """Per-symbol long table of the final days (no portfolio), sorted by symbol, strategy, date.

    ``strategies``: the profile's strategy prefixes in run order (``Profile.strategies``).

    Raises ValueError when a symbol has two simulations on one date (a day counted twice).
    """
    columns = _strategy_columns(simulations, strategies)
    if not columns:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    order, codes, symbols = _symbol_date_order(simulations)
    # blocks of one symbol's rows (dates ascending), repeated once per strategy in run order
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    blocks = np.split(order, bounds)
    count = len(columns)
    rows = np.concatenate([np.tile(block, count) for block in blocks])
    strategy = np.concatenate([np.repeat(np.arange(count), len(block)) for block in blocks])
    prefixes = np.array([c[0] for c in columns], dtype=object)

    def field(k):
        return np.stack([c[k] for c in columns])[strategy, rows]

    return pd.DataFrame(
        {
            "date": simulations["date"].to_numpy()[rows],
            "symbol": labels_at(symbols, codes[rows]),
            "strategy": labels_at(prefixes, strategy),
            "return": field(1),
            "turnover": field(2),
            "in_market": field(3),
            "return_adverse": field(4),
            "return_optimistic": field(5),
        }
    )


def daily_table(simulations: pd.DataFrame, strategies) -> pd.DataFrame:
    """:func:`final_day_table` plus the equal-weight portfolio (symbol :data:`PORTFOLIO`) on the
    symbols' common calendar: the dates every symbol has."""
    return with_portfolio(final_day_table(simulations, strategies))


def with_portfolio(per_symbol, portfolio: pd.DataFrame | None = None) -> pd.DataFrame:
    """A :func:`final_day_table`, or a list of them of distinct symbols (a run's chunks), with the
    equal-weight portfolio appended (``portfolio``: their :func:`portfolio_table`, when made already).

    The rows are copied once, into the result's own columns: a list's tables are taken out of it
    (the list is left empty) and each is let go, and its memory given back, once copied, so a
    universe's daily table (hundreds of MB) is never held twice over."""
    parts = _filled(per_symbol)
    if not parts:
        return per_symbol if isinstance(per_symbol, pd.DataFrame) else pd.DataFrame(columns=list(DAILY_COLUMNS))
    portfolio = portfolio_table(parts) if portfolio is None else portfolio
    if not _same_layout(parts):
        return pd.concat([*parts, portfolio], ignore_index=True)  # an unusual table: the general path
    rows = sum(len(p) for p in parts)
    dtypes = {c: _column_dtype(parts[0][c].dtype) for c in DAILY_COLUMNS}
    # numpy buffers; a pandas text column (pandas 3's default for strings) is gathered as codes
    # into the labels of every part, then taken from them once (not a Python string a row)
    text = {c: _LabelTable() for c, d in dtypes.items() if not isinstance(d, np.dtype)}
    columns = {
        c: np.empty(rows + len(portfolio), dtype=np.int64 if c in text else _buffer_dtype(d)) for c, d in dtypes.items()
    }
    offset = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        for c in DAILY_COLUMNS:
            columns[c][offset : offset + len(part)] = text[c].add(part[c]) if c in text else _values(part[c])
        offset += len(part)
        del part
        release_free_memory()  # the copied table's memory goes back before the next is copied
    for c in DAILY_COLUMNS:
        if c in text:
            columns[c][rows:] = text[c].add(portfolio[c])
        else:
            columns[c][rows:] = portfolio[c].to_numpy(dtype=_buffer_dtype(dtypes[c]))
    return pd.DataFrame(
        {c: text[c].take(columns[c], dtypes[c]) if c in text else _typed(columns[c], dtypes[c]) for c in DAILY_COLUMNS},
        copy=False,
    )


class _LabelTable:
    """The labels of a text column's parts, one after another, and each part's rows as codes into them."""

    def __init__(self):
        self.labels: list = []
        self.size = 0

    def add(self, column: pd.Series) -> np.ndarray:
        """``column``'s rows as codes into the table (its labels appended; a missing value too)."""
        codes, labels = _codes(column)
        codes = codes.astype(np.int64) + self.size
        if (codes < self.size).any():  # a missing label: code -1, now a missing entry of its own
            codes[codes < self.size] = self.size + len(labels)
            labels = np.append(labels, None)
        self.labels.append(labels)
        self.size += len(labels)
        return codes

    def take(self, codes: np.ndarray, dtype):
        """The column of ``dtype`` whose rows are ``codes``."""
        labels = np.concatenate(self.labels) if self.labels else np.empty(0, dtype=object)
        return pd.array(labels, dtype=dtype).take(codes)


def portfolio_table(per_symbol) -> pd.DataFrame:
    """The equal-weight portfolio's rows (symbol :data:`PORTFOLIO`, :data:`DAILY_COLUMNS`) of a
    :func:`final_day_table` or a list of them of distinct symbols, left as they are: the tables
    are read a column at a time, not concatenated.

    Per (strategy, date), the mean over the symbols, on the dates all of them have; a field is NaN
    where any symbol's is (legacy rows record no turnover)."""
    parts = _filled(per_symbol, take=False)
    if not parts:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    # the keys first: which (strategy, date) cells every symbol has; text compared as codes
    named = [_codes(p["strategy"]) for p in parts]
    strategies = pd.unique(np.concatenate([labels[pd.unique(codes)] for codes, labels in named]))
    # each table's few distinct dates found by hashing (a sort of every row cost a universe most of
    # this table), then each row's date as its position among all of them
    coded = [pd.factorize(np.asarray(p["date"].to_numpy()), use_na_sentinel=False) for p in parts]
    dates = np.unique(np.concatenate([uniques for _, uniques in coded]))
    size = len(strategies) * len(dates)
    index = pd.Index(strategies, dtype=object)
    ranks = [index.get_indexer(labels)[codes] for codes, labels in named]
    # how many symbols each strategy has: the tables hold distinct symbols, so their counts add up
    symbols = sum(_symbols_per_strategy(p, rank, len(strategies)) for p, rank in zip(parts, ranks))
    group = np.concatenate(
        [
            rank * len(dates) + np.searchsorted(dates, np.asarray(uniques))[codes]
            for rank, (codes, uniques) in zip(ranks, coded)
        ]
    )
    members = np.bincount(group, minlength=size)
    present = members == np.repeat(symbols, len(dates))
    keys = np.flatnonzero(present)
    fields = {
        # one field of all the tables at a time, in their row order: the sums of one concatenation
        name: _portfolio_field(
            np.concatenate([p[name].to_numpy(np.float64) for p in parts]), group, size, present, members
        )
        for name in DAILY_COLUMNS[3:]
    }
    portfolio = {
        "date": dates[keys % len(dates)],
        "symbol": np.full(len(keys), PORTFOLIO, dtype=object),
        "strategy": np.asarray(strategies, dtype=object)[keys // len(dates)],
        **fields,
    }
    if _same_layout(parts):  # the key columns in the tables' own dtypes (a pandas text column stays one)
        portfolio.update({c: _typed(portfolio[c], _column_dtype(parts[0][c].dtype)) for c in DAILY_COLUMNS[:3]})
    return pd.DataFrame({c: portfolio[c] for c in DAILY_COLUMNS})


def _column_dtype(dtype):
    """The dtype a column of ``dtype`` has in a result: a category's values' own (a run keeps its
    final days' symbol and strategy as categories, a byte or two a row, not as text)."""
    return dtype.categories.dtype if isinstance(dtype, pd.CategoricalDtype) else dtype


def _values(column: pd.Series) -> np.ndarray:
    """A column's values as numpy; a category column's as object references to its few labels
    (not one new string object a row, as converting pandas' text storage would make)."""
    coded = _category_codes(column)
    return column.to_numpy() if coded is None else coded[1][coded[0]]


def _buffer_dtype(dtype):
    """The numpy dtype a column of ``dtype`` is gathered in: itself, or object for pandas' own."""
    return dtype if isinstance(dtype, np.dtype) else np.dtype(object)


def _typed(values: np.ndarray, dtype):
    """``values`` as a column of ``dtype`` (the tables' own: a pandas text column stays one)."""
    return values if isinstance(dtype, np.dtype) and values.dtype == dtype else pd.array(values, dtype=dtype)


def _filled(per_symbol, take: bool = True) -> list:
    """The non-empty tables of one table or a list of them (a list is emptied when ``take``)."""
    if isinstance(per_symbol, pd.DataFrame):
        return [per_symbol] if len(per_symbol) else []
    parts = [p for p in per_symbol if len(p)]
    if take:
        per_symbol.clear()
    return parts


def _same_layout(parts: list) -> bool:
    """Whether the tables all have :data:`DAILY_COLUMNS` with one dtype each (a category column's
    being its labels'), float64 fields."""
    if any(list(p.columns) != list(DAILY_COLUMNS) for p in parts):
        return False
    dtypes = [_column_dtype(parts[0][c].dtype) for c in DAILY_COLUMNS]
    return all(d == np.float64 for d in dtypes[3:]) and all(
        [_column_dtype(p[c].dtype) for c in DAILY_COLUMNS] == dtypes for p in parts
    )


def _portfolio_field(values: np.ndarray, group, size: int, present, members) -> np.ndarray:
    """The mean of ``values`` per present (strategy, date) cell; NaN where any symbol's is."""
    missing = np.bincount(group, weights=np.isnan(values), minlength=size) > 0
    mean = np.bincount(group, weights=np.nan_to_num(values), minlength=size)[present] / members[present]
    return np.where(missing[present], np.nan, mean)


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, labels)``: each row's label as an index into ``labels`` (object): a category
    column's own codes, or the text factorized (labels in order of first appearance)."""
    coded = _category_codes(column)
    if coded is not None:
        return coded
    codes, labels = pd.factorize(column)  # text in its own storage: no Python string a row
    return np.asarray(codes), np.asarray(labels, dtype=object)


def _category_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """A category column's ``(codes, labels as object)``; None for other columns and for one
    with a missing label."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return None
    codes = column.cat.codes.to_numpy()
    if (codes < 0).any():
        return None
    return codes, np.asarray(column.cat.categories, dtype=object)


def _symbols_per_strategy(table, rank: np.ndarray, count: int) -> np.ndarray:
    """(count,) how many distinct symbols of ``table`` have rows of each strategy rank."""
    codes, labels = _codes(table["symbol"])
    pairs = np.unique(rank.astype(np.int64) * max(len(labels), 1) + codes)
    return np.bincount(pairs // max(len(labels), 1), minlength=count)


def calendar_warning(daily: pd.DataFrame) -> str | None:
    """A sentence for the report when the symbols of a :func:`daily_table` rest on different days
    (the portfolio then rests on the days they share); None when all have the same days."""
    # the first strategy's rows alone (every strategy of a symbol has the same days): masks from
    # comparisons in the columns' own storage, not a copy of the table or an object a row
    symbol, strategy = daily["symbol"], daily["strategy"]
    mine = (symbol != PORTFOLIO).to_numpy(dtype=bool)
    if not mine.any():
        return None
    at = int(np.argmax(mine))
    if ((symbol == symbol.iloc[at]).to_numpy(dtype=bool) | ~mine).all():
        return None  # one symbol: nothing to differ from
    first = strategy.iloc[at]
    ours = (strategy == first).to_numpy(dtype=bool)
    rows = mine & ours
    days = pd.DataFrame({"symbol": symbol.array[rows], "date": daily["date"].to_numpy()[rows]})
    days = days.groupby("symbol", sort=False)["date"]
    spans = days.agg(["size", "min", "max"])
    if spans["size"].nunique() == 1 and spans["min"].nunique() == 1 and spans["max"].nunique() == 1:
        return None
    shared = int((ours & ~mine).sum())
    spans = spans.sort_values("size", kind="stable")  # the shortest first: they decide the portfolio
    named = [
        f"{symbol} {int(row['size']):,} days {_day(row['min'])} to {_day(row['max'])}"
        for symbol, row in spans.head(MOST_NAMED).iterrows()
    ]
    rest = len(spans) - len(named)
    listed = "; ".join(named) + (f"; … {rest:,} more symbols, up to {int(spans['size'].max()):,} days" if rest else "")
    portfolio = (
        f"the equal-weight portfolio rests on the {shared:,} days all symbols share"
        if shared
        else "they share no day, so there is no equal-weight portfolio"
    )
    return f"the symbols' daily series cover different days ({listed}); {portfolio}"


def _day(value) -> str:
    return str(pd.Timestamp(value).date()) if not isinstance(value, (int, np.integer)) else str(value)


def wide(table: pd.DataFrame, symbol=PORTFOLIO, field: str = "return") -> pd.DataFrame:
    """Date-indexed frame of one symbol's ``field``, one column per strategy (run order)."""
    return wide_fields(table, symbol, (field,))[field]


def wide_fields(table: pd.DataFrame, symbol=PORTFOLIO, fields=("return",)) -> dict:
    """:func:`wide` of several fields of one symbol, the table read once: ``{field: frame}``."""
    series = wide_series(table[table["symbol"] == symbol], fields).get(symbol)
    if series is None:  # no rows: a pivot's empty frames
        return {f: table.iloc[:0].pivot(index="date", columns="strategy", values=f) for f in fields}
    return {f: series.frame(f) for f in fields}


@dataclass(frozen=True)
class WideSeries:
    """One symbol's daily series in wide form: its ``dates`` (ascending), its ``strategies`` (run
    order), and ``values``: per field a (strategies, dates) float64 array, each strategy's series
    one row."""

    dates: np.ndarray
    strategies: list
    values: dict

    @classmethod
    def empty(cls, fields=None) -> WideSeries:
        """The series of a symbol without days (e.g. a portfolio of symbols that share none)."""
        return cls(np.array([]), [], {f: np.empty((0, 0)) for f in (SERIES_FIELDS if fields is None else fields)})

    def frame(self, field: str = "return") -> pd.DataFrame:
        """``field`` as :func:`wide` gives it: dates down, one column per strategy."""
        index, columns = pd.Index(self.dates, name="date"), pd.Index(self.strategies, name="strategy")
        return pd.DataFrame(self.values[field].T, index=index, columns=columns)


SERIES_FIELDS = DAILY_COLUMNS[3:]  # the daily table's numeric fields


def wide_series(table: pd.DataFrame, fields=SERIES_FIELDS) -> dict:
    """``{symbol: WideSeries}`` of every symbol of a daily table (symbols in order of appearance),
    its columns read once for all of them (a universe's summary asks for thousands).

    The table's own layout (each symbol's rows together, each strategy's dates sorted, every strategy
    on the same dates, as :func:`final_day_table` and :func:`with_portfolio` write it) is already
    the wide one and is sliced; a symbol whose rows are laid out otherwise goes through a pivot."""
    if not len(table):
        return {}
    codes, symbols = _codes(table["symbol"])
    strategy_codes, strategy_labels = _codes(table["strategy"])
    if (codes < 0).any() or (strategy_codes < 0).any():
        raise ValueError("a daily table's rows each name a symbol and a strategy")
    dates = table["date"].to_numpy()
    values = {f: table[f].to_numpy(np.float64) for f in fields}
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    if len(starts) != len(symbols):  # a symbol's rows apart: each symbol's own rows, gathered
        order = np.argsort(codes, kind="stable")
        codes, strategy_codes, dates = codes[order], strategy_codes[order], dates[order]
        values = {f: v[order] for f, v in values.items()}
        table = table.iloc[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
    out = {}
    for begin, end in zip(starts, ends):
        part = slice(begin, end)
        series = _sliced(dates[part], strategy_codes[part], strategy_labels, {f: v[part] for f, v in values.items()})
        out[symbols[codes[begin]]] = series if series is not None else _pivoted(table.iloc[begin:end], fields)
    return out


def _sliced(dates: np.ndarray, strategy_codes: np.ndarray, labels: np.ndarray, values: dict) -> WideSeries | None:
    """The :class:`WideSeries` of one symbol's rows in the table's own layout; None when they are not."""
    ranks = pd.unique(strategy_codes)
    n = len(dates) // len(ranks)
    if n * len(ranks) != len(dates) or (strategy_codes.reshape(len(ranks), n) != ranks[:, None]).any():
        return None
    blocks = dates.reshape(len(ranks), n)
    first = blocks[0]
    if not (blocks == first).all() or not _increasing(first):
        return None
    return WideSeries(first, list(labels[ranks]), {f: v.reshape(len(ranks), n) for f, v in values.items()})


def _increasing(dates: np.ndarray) -> bool:
    """Whether ``dates`` rise strictly (sorted, each once)."""
    if dates.dtype.kind in "iufmM":
        return bool((dates[1:] > dates[:-1]).all())
    index = pd.Index(dates)
    return index.is_monotonic_increasing and index.is_unique


def _pivoted(rows: pd.DataFrame, fields) -> WideSeries:
    """The :class:`WideSeries` of one symbol's rows in any order: a pivot per field, dates sorted,
    strategies in order of first appearance."""
    strategies = list(pd.unique(rows["strategy"]))
    frames = [rows.pivot(index="date", columns="strategy", values=f).sort_index()[strategies] for f in fields]
    dates = frames[0].index.to_numpy() if frames else np.sort(pd.unique(rows["date"]))
    return WideSeries(
        dates, strategies, {f: np.ascontiguousarray(w.to_numpy(np.float64).T) for f, w in zip(fields, frames)}
    )
