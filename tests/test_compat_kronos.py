"""totowalk.compat.kronos.KronosPredictor, the drop-in for the reference's predictor: greedy forecasts
equal to the reference predictor's (kronos-model-arch 0.1.0 on the bundled fixture weights), sampled
means matching its, reproducibility, batch = each alone, reference modules converted, input errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from totowalk.compat.kronos import KronosPredictor
from totowalk.kronos import load_kronos

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FIXTURES = Path(__file__).parent / "fixtures" / "kronos"
COLUMNS = ["open", "high", "low", "close", "volume", "amount"]


@pytest.fixture(scope="module")
def kronos():
    return load_kronos(FIXTURES)


def _frame(seed, rows=30, pred_len=3, volume=True, amount=True, start="2024-01-30 09:30", freq="90min"):
    """A price frame and its timestamps: 90-minute bars, so minute, hour, weekday, day and month all vary."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = close * np.exp(rng.normal(0, 0.003, rows))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, rows))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, rows))
    data = {"open": open_, "high": high, "low": low, "close": close}
    volume_values = rng.uniform(1e5, 2e5, rows)
    if volume:
        data["volume"] = volume_values
    if amount:
        data["amount"] = volume_values * close
    stamps = pd.Series(pd.date_range(start, periods=rows + pred_len, freq=freq))
    return pd.DataFrame(data), stamps[:rows].reset_index(drop=True), stamps[rows:].reset_index(drop=True)


def _frames():
    # with every column; without amount (volume x mean price); without volume (both zero)
    return [_frame(1), _frame(2, amount=False), _frame(3, volume=False)]


# The reference's KronosPredictor(Kronos, KronosTokenizer loaded from tests/fixtures/kronos, device="cpu",
# max_context, clip).predict(df, x_timestamp, y_timestamp, pred_len=3, T=1.0, top_k=1, top_p=0.9,
# sample_count=2) for each of _frames(): (max_context, clip) -> per frame (3, 6), float32 as printed.
REFERENCE_GREEDY = {
    (20, 1.0): [  # the window slides from the first generated token on; the clip bites
        [
            [99.8170776, 101.865273, 100.459114, 102.196663, 163546.641, 15289378],
            [100.085594, 102.487015, 100.944595, 100.688889, 146925.344, 13723963],
            [102.102966, 102.821907, 97.7986755, 102.57917, 162943.156, 16054978],
        ],
        [
            [100.687469, 101.661453, 98.8336029, 100.239517, 165247.297, 12568136],
            [100.974709, 101.44249, 98.7089844, 100.599846, 169921.453, 12404592],
            [101.292091, 101.194527, 98.6047516, 101.018799, 176134.969, 12465767],
        ],
        [
            [98.2242126, 100.534157, 96.7315292, 97.9006348, 1.65120832e-06, -6.0091661e-06],
            [98.4758835, 100.517311, 96.7763519, 98.2108231, 3.07280175e-06, -6.04595471e-06],
            [98.8115463, 100.45018, 96.7272644, 98.5737305, 4.52022778e-06, -5.90127866e-06],
        ],
    ],
    (64, 5): [  # a window that never fills
        [
            [100.174866, 102.527016, 99.6084595, 101.38755, 152802.984, 15665561],
            [100.113342, 102.013, 98.9163513, 100.736824, 154180.109, 15681390],
            [100.106781, 102.782585, 97.975502, 101.587692, 152314.984, 16928542],
        ],
        [
            [100.072044, 100.499771, 99.2034302, 100.742699, 172465.75, 14383901],
            [100.061569, 100.43396, 99.2118073, 100.838127, 174360.781, 14502139],
            [100.111977, 100.434883, 99.1963959, 100.907135, 175846.281, 14581402],
        ],
        [
            [96.3224945, 99.1448059, 99.2651367, 98.2372055, 2.88140996e-06, 1.72772616e-06],
            [99.4649353, 100.030624, 96.371994, 97.3821564, 3.59720474e-07, -4.37224935e-06],
            [97.5720901, 100.482185, 96.6555176, 99.782402, 3.20306253e-06, -6.21368144e-06],
        ],
    ],
}

# The reference predictor (max_context=20, clip=5) on _frame(1), T=1.0, top_k=0, top_p=0.9: the mean
# of 40 calls with sample_count=200 under torch.manual_seed(0), and its standard error.
REFERENCE_SAMPLED_MEAN = [
    [100.225052, 102.184784, 99.9206696, 101.293739, 156401.984, 14917821],
    [100.536194, 102.232109, 99.5046616, 101.195145, 154619.156, 15035248],
    [100.737259, 102.155106, 99.2357025, 101.735703, 158610.531, 15054069],
]
REFERENCE_SAMPLED_SE = [
    [0.011702376, 0.00632826306, 0.0118064676, 0.00714580413, 127.022154, 13262.3158],
    [0.0146912101, 0.00786712759, 0.0143987887, 0.0125745663, 161.739472, 16407.1206],
    [0.00996249066, 0.0110835079, 0.0118799962, 0.0145419359, 170.248699, 13999.7923],
]


def _assert_reference(got: pd.DataFrame, want, df: pd.DataFrame) -> None:
    """Equal up to float noise: 1e-4 in normalised units (the std + 1e-5 of each input column, as the
    predictor normalises); one token chosen otherwise moves a decoded value by far more."""
    features = df.reindex(columns=COLUMNS, fill_value=0.0).to_numpy(np.float32)
    if "volume" not in df:
        features[:, 4:] = 0.0
    elif "amount" not in df:
        features[:, 5] = (df["volume"] * df[COLUMNS[:4]].mean(axis=1)).to_numpy(np.float32)
    bound = 1e-4 * (features.std(axis=0) + 1e-5)
    error = np.abs(got.to_numpy() - np.asarray(want, dtype=np.float32))
    np.testing.assert_array_less(error, np.broadcast_to(bound, error.shape))


def _check_layout(out: pd.DataFrame, y_stamps, pred_len: int = 3) -> None:
    assert list(out.columns) == COLUMNS and out.shape == (pred_len, 6)
    assert (out.dtypes == np.float32).all()
    assert out.index.equals(pd.Index(y_stamps))


@pytest.mark.parametrize("max_context, clip", list(REFERENCE_GREEDY))
def test_greedy_forecasts_equal_the_reference_predictor(kronos, max_context, clip):
    net, tok = kronos
    predictor = KronosPredictor(net, tok, device="cpu", max_context=max_context, clip=clip)
    frames = _frames()
    batch = predictor.predict_batch(
        [f[0] for f in frames], [f[1] for f in frames], [f[2] for f in frames], pred_len=3, top_k=1, sample_count=2
    )
    for (df, x_stamps, y_stamps), got, want in zip(frames, batch, REFERENCE_GREEDY[(max_context, clip)]):
        _check_layout(got, y_stamps)
        _assert_reference(got, want, df)
        alone = predictor.predict(df, x_stamps, y_stamps, pred_len=3, top_k=1, sample_count=2)
        pd.testing.assert_frame_equal(alone, got)


def test_the_clip_and_the_time_features_matter(kronos):
    """The greedy check has power: a different clip or shifted timestamps give other forecasts."""
    net, tok = kronos
    df, x_stamps, y_stamps = _frames()[0]
    want = REFERENCE_GREEDY[(20, 1.0)][0]
    other_clip = KronosPredictor(net, tok, device="cpu", max_context=20, clip=1.85)
    with pytest.raises(AssertionError):
        _assert_reference(other_clip.predict(df, x_stamps, y_stamps, 3, top_k=1), want, df)
    predictor = KronosPredictor(net, tok, device="cpu", max_context=20, clip=1.0)
    shift = pd.Timedelta(hours=5)
    with pytest.raises(AssertionError):
        _assert_reference(predictor.predict(df, x_stamps + shift, y_stamps + shift, 3, top_k=1), want, df)


def test_sampled_means_match_the_reference_predictor(kronos):
    net, tok = kronos
    df, x_stamps, y_stamps = _frames()[0]
    se = np.asarray(REFERENCE_SAMPLED_SE) * np.sqrt(2)  # theirs and ours, 8000 paths each

    def z_scores(T):
        predictor = KronosPredictor(net, tok, device="cpu", max_context=20, clip=5, seed=0)
        got = predictor.predict(df, x_stamps, y_stamps, 3, T=T, top_k=0, top_p=0.9, sample_count=8000)
        return np.abs(got.to_numpy() - np.asarray(REFERENCE_SAMPLED_MEAN)) / se

    assert z_scores(1.0).max() < 5
    assert z_scores(0.5).max() > 10  # the check has power: another temperature is told apart


def test_sampled_forecasts_are_reproducible_and_batch_invariant(kronos):
    net, tok = kronos
    frames = [_frame(4), _frame(5, rows=40), _frame(6, rows=25, amount=False)]  # lengths may differ
    args = ([f[0] for f in frames], [f[1] for f in frames], [f[2] for f in frames])
    settings = dict(pred_len=3, T=1.0, top_p=0.9, sample_count=16)
    seeded = KronosPredictor(net, tok, device="cpu", max_context=32, seed=7)
    batch = seeded.predict_batch(*args, **settings)
    for (df, x_stamps, y_stamps), got in zip(frames, batch):
        _check_layout(got, y_stamps)
        pd.testing.assert_frame_equal(seeded.predict(df, x_stamps, y_stamps, **settings), got)
        assert np.all(np.abs(got["close"] / df["close"].iloc[-1] - 1) < 0.5)  # price units
    again = KronosPredictor(net, tok, device="cpu", max_context=32, seed=7).predict_batch(*args, **settings)
    for a, b in zip(batch, again):
        pd.testing.assert_frame_equal(a, b)
    other = KronosPredictor(net, tok, device="cpu", max_context=32, seed=8).predict_batch(*args, **settings)
    assert not np.array_equal(other[0].to_numpy(), batch[0].to_numpy())

    # seed=None: torch's global generator governs, as with the reference
    unseeded = KronosPredictor(net, tok, device="cpu", max_context=32)
    torch.manual_seed(3)
    first = unseeded.predict_batch(*args, **settings)
    torch.manual_seed(3)
    alone = unseeded.predict(*(a[1] for a in args), **settings)
    pd.testing.assert_frame_equal(alone, first[1])
    second = unseeded.predict_batch(*args, **settings)  # the generator moved on: new draws
    assert not np.array_equal(first[0].to_numpy(), second[0].to_numpy())


def test_predict_batch_is_one_engine_call(kronos, monkeypatch):
    net, tok = kronos
    predictor = KronosPredictor(net, tok, device="cpu", max_context=20, seed=0)
    calls = []
    original = KronosPredictor.engine

    def counting(self, *args, **kwargs):
        engine = original(self, *args, **kwargs)
        forecast = engine.forecast
        engine.forecast = lambda inputs, **kw: calls.append(len(inputs)) or forecast(inputs, **kw)
        return engine

    monkeypatch.setattr(KronosPredictor, "engine", counting)
    frames = _frames()
    predictor.predict_batch([f[0] for f in frames], [f[1] for f in frames], [f[2] for f in frames], 3, top_k=1)
    assert calls == [3]
    assert predictor.predict_batch([], [], [], 3) == []


def test_volume_and_amount_are_filled_as_the_reference_does(kronos):
    net, tok = kronos
    predictor = KronosPredictor(net, tok, device="cpu", max_context=20, seed=0)
    df, x_stamps, y_stamps = _frame(2, amount=False)
    explicit = df.assign(amount=df["volume"] * df[["open", "high", "low", "close"]].mean(axis=1))
    pd.testing.assert_frame_equal(
        predictor.predict(df, x_stamps, y_stamps, 3), predictor.predict(explicit, x_stamps, y_stamps, 3)
    )
    # without volume both are zero, even an amount column given (the reference overwrites it)
    bare = df.drop(columns=["volume"]).assign(amount=5.0)
    zeros = df.assign(volume=0.0, amount=0.0)
    pd.testing.assert_frame_equal(
        predictor.predict(bare, x_stamps, y_stamps, 3), predictor.predict(zeros, x_stamps, y_stamps, 3)
    )
    # extra columns are ignored; a DatetimeIndex or strings do as timestamps
    out = predictor.predict(df.assign(symbol="X"), pd.DatetimeIndex(x_stamps), [str(s) for s in y_stamps], 3)
    pd.testing.assert_frame_equal(out, predictor.predict(df, x_stamps, y_stamps, 3), check_index_type=False)


class _LikeTheReference(torch.nn.Module):
    """A module that is not ours but has our weights' layout and the reference's attributes."""

    def __init__(self, ours, **attributes):
        super().__init__()
        for name, child in ours.named_children():
            self.add_module(name, copy.deepcopy(child))
        for name, value in attributes.items():
            setattr(self, name, value)


def test_reference_modules_are_converted(kronos):
    net, tok = kronos
    c, t = net.config, tok.config
    model = _LikeTheReference(net, _hub_mixin_config=c.to_dict())
    tokenizer = _LikeTheReference(
        tok,
        **{
            k: v for k, v in t.to_dict().items() if k not in ("n_enc_layers", "n_dec_layers", "beta", "gamma0", "gamma")
        },
        enc_layers=t.n_enc_layers,
        dec_layers=t.n_dec_layers,
    )
    for name in ("beta", "gamma0", "gamma", "zeta", "group_size"):
        setattr(tokenizer.tokenizer.bsq, name, getattr(t, name))
    predictor = KronosPredictor(model, tokenizer, device="cpu", max_context=20, clip=1.0)
    assert predictor.model is not model and predictor.model.config == c and predictor.tokenizer.config == t
    df, x_stamps, y_stamps = _frames()[0]
    _assert_reference(predictor.predict(df, x_stamps, y_stamps, 3, top_k=1), REFERENCE_GREEDY[(20, 1.0)][0], df)

    with pytest.raises(TypeError, match="must be a totowalk KronosModel"):
        KronosPredictor("model", tok, device="cpu")
    broken = _LikeTheReference(tok, **t.to_dict())
    del broken.post_quant_embed
    with pytest.raises(ValueError, match="lacks tensor 'post_quant_embed.weight'"):
        KronosPredictor(net, broken, device="cpu")
    with pytest.raises(ValueError, match="lacks .*n_layers"):
        KronosPredictor(_LikeTheReference(net), tok, device="cpu")


def test_from_pretrained_and_settings(kronos):
    predictor = KronosPredictor.from_pretrained(FIXTURES, device="cpu", max_context=20, clip=1.0)
    assert predictor.device == torch.device("cpu") and (predictor.max_context, predictor.clip) == (20, 1.0)
    df, x_stamps, y_stamps = _frames()[0]
    _assert_reference(predictor.predict(df, x_stamps, y_stamps, 3, top_k=1), REFERENCE_GREEDY[(20, 1.0)][0], df)
    net, tok = kronos
    with pytest.raises(ValueError, match="max_context"):
        KronosPredictor(net, tok, device="cpu", max_context=1)
    with pytest.raises(ValueError, match="clip"):
        KronosPredictor(net, tok, device="cpu", clip=0)


def test_bad_inputs_are_refused_with_clear_messages(kronos):
    net, tok = kronos
    predictor = KronosPredictor(net, tok, device="cpu", max_context=20, seed=0)
    df, x_stamps, y_stamps = _frame(1)

    def refused(match, frame=df, xs=x_stamps, ys=y_stamps, pred_len=3, **settings):
        with pytest.raises(ValueError, match=match):
            predictor.predict(frame, xs, ys, pred_len, **settings)

    refused("expected a pandas DataFrame, got ndarray", frame=df.to_numpy())
    refused(r"missing price column\(s\) \['close'\].*found", frame=df.drop(columns=["close"]))
    refused(r"rename 'Close' -> 'close'", frame=df.rename(columns={"close": "Close"}))
    with_nan = df.copy()
    with_nan.loc[7, "low"] = np.nan
    refused(r"NaN in price or volume columns: column 'low', row 7", frame=with_nan)
    with_inf = df.copy()
    with_inf.loc[4, "volume"] = np.inf
    refused(r"infinite value .* column 'volume', row 4", frame=with_inf)
    refused(r"column 'open' is not numeric", frame=df.assign(open="n/a"))
    refused(r"x_timestamp has 29 entries but the DataFrame has 30 rows", xs=x_stamps[:-1])
    refused(r"y_timestamp has 2 entries, pred_len is 3", ys=y_stamps[:2])
    refused(r"NaT\) at position 2", xs=x_stamps.where(x_stamps.index != 2))
    refused(r"x_timestamp must be timestamps", xs=["2024-01-30"] + ["not a date"] * 29)
    refused(r"at least 2 rows", frame=df.iloc[:1], xs=x_stamps[:1])
    refused(r"pred_len must be an integer in 1..max_context \(20\)", ys=pd.date_range("2025", periods=21), pred_len=21)
    refused(r"pred_len", pred_len=0)
    refused(r"T \(the sampling temperature\) must be a positive number", T=0)
    refused(r"sample_count must be an integer >= 1", sample_count=0)

    frames = _frames()
    dfs, xs, ys = [f[0] for f in frames], [f[1] for f in frames], [f[2] for f in frames]
    with pytest.raises(ValueError, match="must be lists or tuples"):
        predictor.predict_batch(dfs[0], xs, ys, 3)
    with pytest.raises(ValueError, match="must have the same length, got 3, 2, 3"):
        predictor.predict_batch(dfs, xs[:2], ys, 3)
    dfs[1] = dfs[1].drop(columns=["high"])
    with pytest.raises(ValueError, match=r"^DataFrame at index 1: missing price column\(s\) \['high'\]"):
        predictor.predict_batch(dfs, xs, ys, 3)

    small = json.loads((FIXTURES / "tokenizer" / "config.json").read_text())
    assert small["s1_bits"] == 4  # the fixture pair; a tokenizer of other bits is refused
    from totowalk.kronos import KronosTokenizer
    from totowalk.kronos.config import TOKENIZER_PRESETS

    with pytest.raises(ValueError, match="not a pair"):
        KronosPredictor(net, KronosTokenizer(TOKENIZER_PRESETS["tokenizer-base"]), device="cpu")


def test_live_reference_predictor_equals_ours():
    """The reference's own KronosPredictor on the fixture weights, against ours given the reference's
    modules (skips without the reference package; run in its venv with PYTHONPATH=python)."""
    ref = pytest.importorskip("model.kronos")
    from safetensors.torch import load_file

    tok = ref.KronosTokenizer(**json.loads((FIXTURES / "tokenizer" / "config.json").read_text())).eval()
    tok.load_state_dict(load_file(FIXTURES / "tokenizer" / "model.safetensors"))
    net = ref.Kronos(**json.loads((FIXTURES / "model" / "config.json").read_text())).eval()
    net.load_state_dict(load_file(FIXTURES / "model" / "model.safetensors"))
    frames = _frames()
    args = ([f[0] for f in frames], [f[1] for f in frames], [f[2] for f in frames])
    for max_context, clip in ((20, 1.0), (64, 5), (512, 5)):
        theirs = ref.KronosPredictor(net, tok, device="cpu", max_context=max_context, clip=clip)
        ours = KronosPredictor(net, tok, device="cpu", max_context=max_context, clip=clip)
        settings = dict(pred_len=3, T=0.7, top_k=1, top_p=0.9, sample_count=3, verbose=False)
        for want, got, df in zip(
            theirs.predict_batch(*args, **settings), ours.predict_batch(*args, **settings), args[0]
        ):
            _assert_reference(got, want.to_numpy(), df)
            assert got.index.equals(want.index) and list(got.columns) == list(want.columns)
            assert (got.dtypes == want.dtypes).all()
