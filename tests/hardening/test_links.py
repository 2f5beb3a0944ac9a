"""Issue 13: a shared link with values the dashboard cannot use says what it ignored and keeps the rest.

Before: unknown values were dropped without notice, a bogus table dropped the valid one beside it, and a
date outside the data was replaced silently."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lib.model import Filters
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def _open(params: dict[str, str | list[str]]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ignored(at: AppTest) -> str:
    return "\n".join(w.value for w in at.sidebar.warning if "Ignored from the link" in w.value)


def test_unknown_values_are_named_and_the_valid_ones_kept(app_db: Path) -> None:
    at = _open({
        "table": ["bogus", "precompute_failures"],
        "processor": ["NoSuchProcessor", "PlayerDailyCacheProcessor"],
        "status": ["UNRESOLVED", "<script>alert(1)</script>"],
        "type": "NOT_A_TYPE",
        "correctable": "maybe",
    })  # fmt: skip
    assert at.sidebar.multiselect(key="table").value == ["precompute_failures"]
    assert at.sidebar.multiselect(key="processor").value == ["PlayerDailyCacheProcessor"]
    assert at.sidebar.multiselect(key="status").value == ["UNRESOLVED"]
    notice = _ignored(at)
    for name in ("bogus", "NoSuchProcessor", "NOT\\_A\\_TYPE", "maybe", "script"):
        assert name in notice, (name, notice)
    assert "<script>" not in notice  # shown inert
    store = DuckDBStore(app_db)
    start, end = q.bounds(store).default_range() or (None, None)
    expected = q.kpis(store, Filters(date_from=start, date_to=end, tables=("precompute_failures",),
                                     processors=("PlayerDailyCacheProcessor",), statuses=("UNRESOLVED",)))  # fmt: skip
    assert {m.label: m.value for m in at.metric}["Items"] == f"{expected.items:,}"


def test_dates_outside_the_data_or_unreadable_are_named(app_db: Path) -> None:
    bounds = q.bounds(DuckDBStore(app_db))
    at = _open({"from": "1800-01-01", "to": "yesterday"})
    assert at.sidebar.date_input(key="from").value == bounds.first_date
    notice = _ignored(at)
    assert "1800" in notice and "outside the data" in notice and "not a YYYY-MM-DD date" in notice


def test_a_reversed_range_is_shown_the_other_way_round_not_as_one_day(app_db: Path) -> None:
    at = _open({"from": "2022-02-01", "to": "2022-01-01"})
    assert any("the other way round" in w.value for w in at.sidebar.warning)
    expected = q.kpis(DuckDBStore(app_db), Filters(date_from=dt.date(2022, 1, 1), date_to=dt.date(2022, 2, 1)))
    assert {m.label: m.value for m in at.metric}["Items"] == f"{expected.items:,}"


def test_a_clean_link_shows_no_notice(app_db: Path) -> None:
    at = _open({"table": ["analytics_failures"], "from": "2022-01-01", "to": "2022-01-31"})
    assert _ignored(at) == ""
    assert at.sidebar.multiselect(key="table").value == ["analytics_failures"]


def test_a_switch_that_is_neither_true_nor_false_and_an_overlong_entity_are_named(app_db: Path) -> None:
    at = _open({"hide_expected": "maybe", "disagree": "sometimes", "entity": "a" * 5000})
    notice = _ignored(at)
    assert "maybe" in notice and "sometimes" in notice and "not true or false" in notice, notice
    assert "5,000 characters" in notice and "first 200" in notice, notice
    assert at.sidebar.toggle(key="hide_expected").value is True and at.sidebar.toggle(key="disagree").value is False
    clean = _open({"hide_expected": "FALSE", "entity": "zach"})  # Streamlit reads either case: nothing to name
    assert _ignored(clean) == "" and clean.sidebar.toggle(key="hide_expected").value is False
