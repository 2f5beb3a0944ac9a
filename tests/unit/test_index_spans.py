"""The item index's span arithmetic (lib/store/index.py): what it keeps as known current after a write, against the
same dates counted one by one."""

from __future__ import annotations

import datetime as dt
import itertools
import random

from lib.model import EARLIEST, LATEST
from lib.store import index

DAY = dt.timedelta(days=1)
#: Spans drawn around a month, and some at the ends of the calendar (where a day more or less does not exist).
BASES = (dt.date(2021, 12, 1), EARLIEST, LATEST - dt.timedelta(days=30))


def _days(spans: list[tuple[dt.date, dt.date]]) -> set[dt.date]:
    out: set[dt.date] = set()
    for lo, hi in spans:
        day = lo
        while day <= hi:
            out.add(day)
            if day == LATEST:
                break
            day += DAY
    return out


def _plus(day: dt.date, days: int) -> dt.date:
    return dt.date.fromordinal(min(day.toordinal() + days, LATEST.toordinal()))


def _spans(rng: random.Random, base: dt.date, n: int) -> list[tuple[dt.date, dt.date]]:
    out = []
    for _ in range(n):
        lo = _plus(base, rng.randrange(40))
        out.append((lo, _plus(lo, rng.randrange(8))))
    return out


def test_what_stays_known_after_writes_is_every_day_known_before_that_no_write_touched() -> None:
    rng = random.Random(7)
    for case in range(600):
        base = BASES[case % len(BASES)]
        fresh, cuts = _spans(rng, base, rng.randrange(5)), _spans(rng, base, rng.randrange(4))
        kept = index._without(fresh, cuts)
        assert _days(kept) == _days(fresh) - _days(cuts), (fresh, cuts)
        # As few spans as those days allow: sorted, none overlapping or adjacent to the next.
        assert all(index._after(a[1]) < b[0] for a, b in itertools.pairwise(kept)), kept
        assert all(lo <= hi for lo, hi in kept)


def test_a_range_is_covered_only_when_every_one_of_its_days_is_known() -> None:
    rng = random.Random(11)
    for case in range(600):
        base = BASES[case % len(BASES)]
        memo = index._Memo(version="v", fresh=index._merged(_spans(rng, base, rng.randrange(5))))
        lo = _plus(base, rng.randrange(40))
        hi = _plus(lo, rng.randrange(10))
        want = _days([(lo, hi)]) <= _days(memo.fresh)
        assert index._covered(memo, "v", lo, hi) is want, (memo.fresh, lo, hi)
        assert not index._covered(memo, "another version", lo, hi)


def test_a_journal_line_reads_back_as_written_and_a_damaged_one_is_never_taken() -> None:
    """The journal file's lines (lib/store/duckdb_store.py): every kind of entry back as it was; a line cut short,
    with a field too many, a span or a flag that does not parse, is skipped (None), never read as something else."""
    from lib.store.base import NO_DATES
    from lib.store.duckdb_store import _bounding, _line, _parse

    day = dt.date(2022, 3, 12)
    spans = [None, NO_DATES, (day, day), (day, None), (None, day), (None, None)]
    for span, derived in itertools.product(spans, (False, True)):
        entry = ("1:2|-", span, derived)
        text = _line("3:4|5:6", entry)
        assert text.endswith("\n") and _parse(text[:-1]) == ("3:4|5:6", entry)
    good = _line("3:4|-", ("1:2|-", (day, day), False))[:-1]
    for bad in (
        good[: good.rindex("\t")],
        good + "\t0",
        good.replace("..", "."),
        good.replace("2022-03-12", "2022-13-12"),
        good[:-1] + "2",
        "\t" + good.split("\t", 1)[1],
        "",
    ):
        assert _parse(bad) is None, bad
    # What one write's open blocks declare, as one entry: the dates when any names some, else "no dates", else a visit.
    assert _bounding([None, NO_DATES]) == NO_DATES and _bounding([None]) is None
    assert _bounding([NO_DATES, (day, day), (day - DAY, None)]) == (day - DAY, None)


def test_a_refresh_takes_the_step_its_budget_says_as_each_step_begins() -> None:
    """``index._chunks`` asks its row budget as each run of dates begins (the rebuild before it may have let a waiting
    process in, which makes the next steps smaller): the runs follow the budgets asked, table by table, and cover
    every date once, in order."""
    import pandas as pd

    days = [dt.date(2022, 3, 1) + DAY * i for i in range(10)]
    pairs = pd.DataFrame({"source_table": ["a"] * 10 + ["b"] * 2, "item_date": days + days[:2]})
    rows = {("a", d): 10 for d in days} | {("b", d): 500 for d in days[:2]}
    budgets = iter([35, 15, 1000, 100, 100])
    runs = list(index._chunks(pairs, rows, lambda: next(budgets)))
    assert [(t, len(ds)) for t, ds in runs] == [("a", 3), ("a", 1), ("a", 6), ("b", 1), ("b", 1)]
    assert [d for t, ds in runs if t == "a" for d in ds] == days  # every date once, in order
    # A date larger than the budget is a step of its own, never left out.
    assert list(index._chunks(pairs[pairs["source_table"] == "b"], rows, lambda: 1)) == [("b", [days[0]]),
                                                                                         ("b", [days[1]])]  # fmt: skip
