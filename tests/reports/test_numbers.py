"""The numbers reports and gates share: one missing check, one reader, one format."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from batchmark.config._pricing import fmt_usd
from batchmark.reports._numbers import MISSING, as_number, fmt_number, is_missing, json_ready


def test_a_missing_number_is_none_or_nan() -> None:
    """The one check reports, gates and comparisons use for a number they lack."""
    assert is_missing(None) and is_missing(math.nan) and is_missing(float("nan"))
    assert is_missing(pd.Series([1.0, None]).iloc[1])  # numpy NaN
    assert not any(is_missing(v) for v in (0, 0.0, False, "", math.inf))


def test_a_number_is_read_as_a_float_or_none() -> None:
    assert as_number(np.int64(3)) == 3.0 and isinstance(as_number(np.int64(3)), float)
    assert as_number(math.nan) is None and as_number(None) is None


def test_a_number_is_shown_with_three_digits_and_a_missing_one_as_a_dash() -> None:
    assert fmt_number(0.8125) == "0.812"
    assert fmt_number(0.0125, sign=True) == "+0.013"
    assert fmt_number(-0.5, digits=2, sign=True) == "-0.50"
    assert fmt_number(math.nan) == fmt_number(None) == MISSING == "–"


def test_a_number_that_rounds_to_zero_has_no_minus_sign() -> None:
    """Issue 17: a gate read ``drop -0.000`` (the negation of a 0.0 difference)."""
    assert fmt_number(-0.0) == "0.000" and fmt_number(-0.0004) == "0.000"
    assert fmt_number(-0.0, sign=True) == "+0.000" and fmt_number(-1e-9, sign=True) == "+0.000"
    assert fmt_number(-0.0006) == "-0.001"


def test_a_cost_is_shown_in_dollars_or_as_not_available() -> None:
    assert fmt_usd(1234.5) == "$1,234.5000"
    assert fmt_usd(None) == "n/a"


def test_json_ready_data_has_no_nan_and_no_numpy() -> None:
    data = {"a": [np.float64(0.5), math.nan, (np.int64(2), None)], "b": {"c": np.float32("nan")}}
    ready = json_ready(data)
    assert ready == {"a": [0.5, None, [2, None]], "b": {"c": None}}
    assert json.loads(json.dumps(ready, allow_nan=False)) == ready
