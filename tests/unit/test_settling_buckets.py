"""The backlog's days bucketed at once agree with the bucket of each day's start, over every calendar day."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from lib.settling import _age_bounds, _bucket_of, _day_buckets

NOW = dt.datetime(2026, 12, 5, 9, 30, 15, 250_000, tzinfo=dt.UTC)


def _one_by_one(days: list[dt.date | None], items: list[int]) -> dict[int, int]:
    bounds = _age_bounds(NOW)
    out: dict[int, int] = {}
    for day, n in zip(days, items, strict=True):
        bucket = -1 if day is None else _bucket_of(dt.datetime.combine(day, dt.time(), dt.UTC), bounds)
        out[bucket] = out.get(bucket, 0) + n
    return {b: n for b, n in out.items() if n}


@pytest.mark.parametrize("kind", ["naive", "utc", "object"])
def test_every_day_is_bucketed_as_its_start_is_including_the_ends_of_the_calendar(kind: str) -> None:
    today = NOW.date()
    days: list[dt.date | None] = [today - dt.timedelta(days=k) for k in range(0, 200, 3)]
    days += [dt.date(1, 1, 1), dt.date(1677, 9, 21), dt.date(2262, 4, 12), dt.date(9999, 12, 31), None]
    items = [k % 5 + 1 for k in range(len(days))]
    series = pd.Series([pd.NaT if d is None else pd.Timestamp(d).as_unit("us") for d in days], dtype="datetime64[us]")
    if kind == "utc":
        series = series.dt.tz_localize("UTC")
    elif kind == "object":
        series = pd.Series(days, dtype="object")
    got = dict(_day_buckets(series, pd.Series(items), _age_bounds(NOW)))
    assert got == _one_by_one(days, items)
    assert sum(got.values()) == sum(items)  # nothing lost, the day-less ones included
