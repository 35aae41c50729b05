"""Reading the user's numbers: CSV columns and dates, every bad line or position named."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn.series import SeriesError, parse_csv, parse_numbers


def test_header_date_column_and_numeric_columns():
    series = parse_csv("Date,Close,Volume\n2020-01-02,1.5,100\n2020-01-03,-2e-1,200\n")
    assert series.dates == ["2020-01-02", "2020-01-03"]
    assert list(series.columns) == ["Close", "Volume"]
    np.testing.assert_array_equal(series.columns["Close"], [1.5, -0.2])
    assert series.length == 2


def test_no_header_no_dates():
    series = parse_csv("1,2\n3,4\n\n5,6\n")  # a blank line is not a row
    assert series.dates is None
    np.testing.assert_array_equal(series.columns["column 2"], [2, 4, 6])


def test_dates_without_a_header_are_found_by_their_look():
    series = parse_csv("2021-05-01,7\n2021-05-02,8\n")
    assert series.dates == ["2021-05-01", "2021-05-02"] and list(series.columns) == ["column 2"]


def test_every_bad_line_is_named_by_its_number():
    text = "date,price\n2020-01-01,1\n2020-01-02,abc\n\n2020-01-01,3\n2020-01-05,\n2020-01-06,4,5\n"
    with pytest.raises(SeriesError) as caught:
        parse_csv(text)
    lines = [line for line, _ in caught.value.problems]
    assert lines == [3, 5, 6, 7]
    message = str(caught.value)
    assert message.startswith("file: line 3: price: 'abc' is not a number")
    assert "line 5: date 2020-01-01 is not after the previous date 2020-01-02" in message
    assert "line 6: price: empty" in message and "line 7: 3 cells, expected 2" in message


@pytest.mark.parametrize("cell", ["nan", "inf", "1_000", "1,000", "0x10", "--1"])
def test_only_plain_finite_decimals_count_as_numbers(cell):
    with pytest.raises(SeriesError, match="^file: line 3: "):
        parse_csv(f'x\n1\n"{cell}"\n')


def test_one_row_is_no_series():
    with pytest.raises(ValueError, match="at least two rows of values, got 1"):
        parse_csv("price\n5\n")


def test_size_cap():
    with pytest.raises(ValueError, match="over the limit of 10 values"):
        parse_csv("a,b\n" + "1,2\n" * 6, max_values=10)


def test_pasted_numbers_reject_non_numbers_by_position():
    np.testing.assert_array_equal(parse_numbers("1, 2.5;\n-3 4e1"), [1, 2.5, -3, 40])
    with pytest.raises(SeriesError, match=r"^series: position 2: 'abc' is not a finite number$"):
        parse_numbers("1, abc, 3")
    with pytest.raises(SeriesError, match="position 1: .*; position 3"):
        parse_numbers([None, 2, "x"])
    with pytest.raises(ValueError, match="not nested"):
        parse_numbers([[1, 2]])
    with pytest.raises(ValueError, match="no numbers"):
        parse_numbers(" , ")
