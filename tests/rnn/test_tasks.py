"""Built-in tasks: shapes, determinism under a seed, and each task's defining property."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn.tasks import TASKS, describe_tasks, make_task

SERIES = list(np.sin(np.arange(200) * 0.2))


def build(name, **params):
    if name == "custom" and not params:
        params = {"series": SERIES}
    return make_task(name, **params)


@pytest.mark.parametrize("name", list(TASKS))
def test_shapes_and_determinism(name):
    task = build(name)
    spec = task.spec
    x1, y1 = task.sample(np.random.default_rng(3), 5)
    x2, y2 = task.sample(np.random.default_rng(3), 5)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, _ = task.sample(np.random.default_rng(4), 5)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (5, spec.length, spec.input_size)
    if spec.head == "regression":
        expected = (
            (5, spec.length, spec.output_size)
            if spec.output_mode == "sequence"
            else (5, spec.output_size)
        )
    else:
        expected = (5, spec.length) if spec.output_mode == "sequence" else (5,)
        assert np.all((y1 >= 0) & (y1 < spec.output_size) & (y1 == np.round(y1)))
    assert y1.shape == expected
    config = task.config(cell="gru", hidden_size=4)
    task.check_config(config)


def test_descriptions():
    described = {d["name"]: d for d in describe_tasks()}
    assert set(described) == {
        "sine",
        "random_walk",
        "stocks",
        "adding",
        "copy",
        "parity",
        "gap",
        "text",
        "custom",
    }
    assert all(len(d["description"]) > 100 for d in described.values())


def test_adding_target_is_the_sum_of_the_marked_values():
    task = make_task("adding", length=20)
    x, y = task.sample(np.random.default_rng(0), 200)
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :10].sum(axis=1) == 1) and np.all(marks[:, 10:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1))
    # predicting the mean scores about 1/6
    assert abs(np.mean((y - y.mean()) ** 2) - 1 / 6) < 0.03


@pytest.mark.parametrize("name", ["sine", "random_walk"])
def test_forecast_targets_are_the_next_values(name):
    task = make_task(name, length=12, horizon=3)
    x, y = task.sample(np.random.default_rng(1), 4)
    # target at t holds x_{t+1..t+3}: where those are inputs, they agree
    for t in range(12 - 3):
        np.testing.assert_array_equal(y[:, t, :], x[:, t + 1 : t + 4, 0])


def test_copy_targets_repeat_the_symbols_after_the_go_marker():
    task = make_task("copy", symbols=4, delay=6, alphabet=5)
    x, y = task.sample(np.random.default_rng(2), 8)
    codes = x.argmax(axis=2)
    T = 2 * 4 + 6 + 1
    assert x.shape[1] == T
    assert np.all(codes[:, 4 + 6] == 6)  # go marker
    np.testing.assert_array_equal(y[:, T - 4 :], codes[:, :4])
    assert np.all(y[:, : T - 4] == 5)  # blank class elsewhere


def test_parity_is_delayed_xor():
    task = make_task("parity", length=25, lag=4)
    x, y = task.sample(np.random.default_rng(5), 6)
    bits = x[:, :, 0].astype(int)
    np.testing.assert_array_equal(y[:, 4:], bits[:, 4:] ^ bits[:, :-4])
    np.testing.assert_array_equal(y[:, :4], bits[:, :4])


def test_text_is_next_character():
    task = make_task("text", length=15)
    x, y = task.sample(np.random.default_rng(6), 3)
    chars = x.argmax(axis=2)
    np.testing.assert_array_equal(y[:, :-1], chars[:, 1:])
    text = "".join(task.vocabulary[c] for c in chars[0])
    assert text in task.text


def test_custom_classification():
    seqs = [[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    task = make_task("custom", sequences=seqs, labels=[0, 1, 2])
    x, y = task.sample(np.random.default_rng(0), 10)
    assert task.spec.output_size == 3 and task.spec.output_mode == "last"
    for xi, yi in zip(x[:, :, 0], y, strict=True):
        assert seqs[int(yi)] == list(xi)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("nope", {}, "task.name"),
        ("adding", {"length": 1}, "task.length"),
        ("adding", {"length": 2.5}, "task.length"),
        ("adding", {"lenght": 5}, "task: unknown"),
        ("copy", {"delay": -1}, "task.delay"),
        ("custom", {}, "task.series"),
        ("custom", {"series": [1.0, 2.0]}, "task.length"),
        ("custom", {"series": [1.0, float("nan")] * 30}, "task.series"),
        ("custom", {"sequences": [[1.0, 2.0]], "labels": [0, 1]}, "task.labels"),
    ],
)
def test_bad_task_parameters(name, params, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make_task(name, **params)


def test_config_must_fit_the_task():
    from app.rnn import ModelConfig

    with pytest.raises(ValueError, match="^config.input_size"):
        make_task("adding").check_config(ModelConfig(input_size=1))
    # a task with one output per sequence takes it from output[-1] or from h_n
    adding = make_task("adding")
    final = adding.config(bidirectional=True, output_mode="final")
    assert final.output_mode == "final"
    adding.check_config(final)
    assert adding.config(output_mode="sequence").output_mode == "last"
    with pytest.raises(ValueError, match="^config.output_mode"):
        make_task("sine").check_config(ModelConfig(output_mode="final"))
    assert make_task("sine").config(output_mode="final").output_mode == "sequence"


def _shipped_prices(ticker):
    import csv

    from app.rnn.series_tasks import STOCKS_PATH

    with STOCKS_PATH.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r[ticker]]
    return [r["date"] for r in rows], {r["date"]: float(r[ticker]) for r in rows}


@pytest.mark.parametrize("normalisation", ["log_returns", "window"])
def test_stock_values_are_the_shipped_prices(normalisation):
    task = make_task("stocks", ticker="IBM", length=10, horizon=2, normalisation=normalisation)
    dates, prices = _shipped_prices("IBM")
    x, y, info = task.sample_info(np.random.default_rng(0), 6, "train")
    scale = task.spec.params["scale"]
    for row, window_dates in enumerate(info["dates"]):
        raw = np.array([prices[d] for d in window_dates])  # (T + 2,)
        np.testing.assert_array_equal(info["values"][row], raw)
        if normalisation == "log_returns":
            before = prices[dates[dates.index(window_dates[0]) - 1]]
            expected = np.diff(np.log(np.concatenate([[before], raw]))) / scale
        else:
            expected = np.log(raw / raw[0]) / scale
        np.testing.assert_allclose(x[row, :, 0], expected[:10], rtol=1e-12)
        np.testing.assert_allclose(y[row, :, 0], expected[1:11], rtol=1e-12)
        np.testing.assert_allclose(y[row, :, 1], expected[2:12], rtol=1e-12)
    # the unit is the typical daily move before the split, so values are near unit size
    train_days = [d for d in dates if d < "2011-01-01"]
    log_train = np.log([prices[d] for d in train_days])
    assert scale == pytest.approx(np.std(np.diff(log_train)), rel=1e-12)


@pytest.mark.parametrize("normalisation", ["log_returns", "window"])
@pytest.mark.parametrize("ticker", ["AAPL", "GOOG"])
def test_the_date_split_never_leaks(ticker, normalisation):
    split = "2008-06-02"
    task = make_task(
        "stocks", ticker=ticker, length=30, horizon=5, split=split, normalisation=normalisation
    )
    dates, _ = _shipped_prices(ticker)
    rng = np.random.default_rng(1)
    _, _, train_info = task.sample_info(rng, 2000, "train")
    _, _, test_info = task.sample_info(rng, 2000, "test")
    train_dates = [d for window in train_info["dates"] for d in window]
    test_firsts = [window[0] for window in test_info["dates"]]
    assert max(train_dates) < split  # no training window holds a date on or after the split
    # nor does a held-out window read a price before it (a log return reads the day before)
    first_read = [dates.index(d) - (normalisation == "log_returns") for d in test_firsts]
    assert min(dates[i] for i in first_read) >= split
    # windows spread over each part, not a few repeated ones
    assert len({w[0] for w in train_info["dates"]}) > 500 and len(set(test_firsts)) > 300


def test_held_out_and_training_draws_differ_only_for_real_series():
    sine = make_task("sine")
    a, _ = sine.sample(np.random.default_rng(0), 3, "train")
    b, _ = sine.sample(np.random.default_rng(0), 3, "test")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="^split"):
        sine.sample(np.random.default_rng(0), 3, "validation")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ticker": "TSLA"}, "^task.ticker: must be one of AAPL, GOOG, IBM, MSFT"),
        ({"split": "June"}, "^task.split: must be a date"),
        ({"normalisation": "zscore"}, "^task.normalisation"),
        ({"split": "2000-03-20"}, r"^task.length: .* only 13 lie before 2000-03-20"),
        ({"ticker": "GOOG", "split": "2013-01-02", "length": 100}, "^task.length: .*from"),
    ],
)
def test_bad_stock_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        make_task("stocks", **params)


def test_custom_series_rejects_non_numbers_by_position():
    with pytest.raises(ValueError, match=r"^task.series: position 2: 'abc' is not a finite"):
        make_task("custom", series="1, abc, 3")
    with pytest.raises(ValueError, match=r"^task.series: position 3: 'x'"):
        make_task("custom", series=[1, 2, "x"] + [1] * 30)


def test_custom_series_honours_the_length_or_says_why_not():
    series = list(np.arange(100.0))
    task = make_task("custom", series=series, length=15, horizon=2, test_fraction=0.2)
    x, y = task.sample(np.random.default_rng(0), 50, "train")
    assert x.shape == (50, 15, 1) and task.spec.length == 15
    with pytest.raises(ValueError, match=r"task.length: .*= 22 values, but only 20 lie in the "):
        make_task("custom", series=series, length=20, horizon=2, test_fraction=0.2)
    # with no held-out part the whole series is usable
    assert make_task("custom", series=series, length=98, horizon=2, test_fraction=0).spec.length


def test_custom_series_split_by_position_and_standardised_on_training_values_only():
    series = np.arange(100.0)
    task = make_task("custom", series=list(series), length=5, test_fraction=0.3)
    assert task.spec.params["train_values"] == 70
    shift, scale = task.spec.params["shift"], task.spec.params["scale"]
    assert shift == pytest.approx(series[:70].mean()) and scale == pytest.approx(series[:70].std())
    train, _ = task.sample(np.random.default_rng(0), 500, "train")
    test, _ = task.sample(np.random.default_rng(0), 500, "test")
    raw_train, raw_test = train * scale + shift, test * scale + shift
    assert raw_train.max() < 70 - 1 + 1e-9  # a training window's target (one more) is < 70
    assert raw_test.min() >= 70 - 1e-9


def test_custom_series_with_dates_returns_them():
    dates = [f"2020-01-{d:02d}" for d in range(1, 31)]
    task = make_task("custom", series=list(range(30)), dates=dates, length=5, test_fraction=0)
    _, _, info = task.sample_info(np.random.default_rng(0), 2)
    first = dates.index(info["dates"][0][0])
    assert info["dates"][0] == dates[first : first + 6]
    with pytest.raises(ValueError, match="^task.dates"):
        make_task("custom", series=list(range(30)), dates=dates[:-1], length=5)


def test_gap_masks_a_middle_stretch_and_targets_the_truth():
    task = make_task("gap", length=20, gap=6)
    x, y = task.sample(np.random.default_rng(0), 50)
    mask = x[:, :, 1] == 1
    assert np.all(mask.sum(axis=1) == 6)
    starts = mask.argmax(axis=1)
    assert starts.min() >= 5 and starts.max() + 6 <= 15  # a quarter kept visible each side
    assert np.all(x[:, :, 0][mask] == 0)
    np.testing.assert_array_equal(x[:, :, 0][~mask], y[:, :, 0][~mask])
    with pytest.raises(ValueError, match="^task.gap"):
        make_task("gap", length=20, gap=11)
