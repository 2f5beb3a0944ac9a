"""Issue 13: a fuzz suite of bad input. Command lines, links and failure rows that a hurried newcomer, an
attacker or a misbehaving processor could produce; each must end in a clear message or a normal result:
no traceback, no exception box, nothing lost.

The default run is bounded and deterministic (a fixed derandomised search, at least 985 inputs);
``make fuzz-long`` (TRIAGE_FUZZ_FACTOR=40) runs forty times as many (39,400: as many rows and links as before).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from lib import classification, patterns, players, resolution, workqueue
from lib.__main__ import main
from lib.access import SYSTEM
from lib.errors import TriageError
from lib.model import Actor, Filters, ItemKey, Page
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT, precompute_row
from tests.hardening.test_hostile_rows import HOSTILE, hostile_store

FACTOR = int(os.environ.get("TRIAGE_FUZZ_FACTOR", "1"))
# Command lines (600: fewer reach too few real commands), batches of 13 to 16 failure rows (at least 260 rows),
# links: at least 985 inputs.
CLI_EXAMPLES, ROW_EXAMPLES, LINK_EXAMPLES = 600 * FACTOR, 20 * FACTOR, 125 * FACTOR
FUZZ = {"deadline": None, "derandomize": True, "database": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                  HealthCheck.data_too_large]}  # fmt: skip

# -- hostile values ---------------------------------------------------------------------------------
NASTY_TEXT = [
    "",
    " ",
    "\t",
    "\n",
    "\x00",
    "\x1b[2J",
    "\u202e",
    "é",
    "🏀",
    "=cmd|' /C calc'!A0",
    "+1",
    "-1",
    "@SUM(1)",
    "'; DROP TABLE nba_processing.failure_resolutions; --",
    '" OR 1=1 --',
    "${HOME}",
    "$(rm -rf /)",
    "%s%n",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "**bold**",
    "a" * 5_000,
    ":",
    "::::",
    "%3A",
    "%",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "1e30",
    "0",
    "-0",
    "9" * 40,
    "2022-02-30",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "2022-01-01T00:00",
    "null",
    "None",
    "[]",
    "{}",
    '["2022-01-01"',
    "true",
]
text = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=40), st.text(min_size=1, max_size=3000))
dates = st.one_of(st.sampled_from(["2021-12-31", "2022-01-15", "1850-01-01", "3100-01-01", "2022-13-01", "",
                                   "yesterday", "2022-1-1", " 2022-01-01 "]), text)  # fmt: skip


# -- command lines ----------------------------------------------------------------------------------
COMMANDS = ["init", "demo", "classify", "items", "items", "resolve", "resolve", "autoresolve", "sync-status", "nosuch"]


def _mostly(valid: list[str], hostile: st.SearchStrategy[str] = text) -> st.SearchStrategy[str]:
    """Three in four draws a value the command accepts (to reach the code behind argparse), else anything."""
    good = st.sampled_from(valid)
    return st.one_of(good, good, good, hostile)


OPTIONS: dict[str, st.SearchStrategy[str] | None] = {
    "--since": _mostly(["2021-12-01", "2021-12-31", "1850-01-01", "0001-01-01"], dates),
    "--until": _mostly(["2021-12-31", "2022-01-15", "3100-01-01", "9999-12-31"], dates),
    "--table": _mostly(["precompute_failures", "analytics_failures", "prediction_failures"]),
    "--processor": _mostly(["PlayerDailyCacheProcessor", "Weird:Proc%3A", ""]),
    "--category": _mostly(["INCOMPLETE_DATA", ""]), "--type": _mostly(["PLAYER_DNP", "UNCLASSIFIED"]),
    "--correctable": _mostly(["correctable", "uncorrectable", "unknown"]),
    "--status": _mostly(["UNRESOLVED", "PERMANENT", "REGRESSED"]), "--entity": _mostly(["zach", ":", "%", ""]),
    "--format": st.sampled_from(["json", "csv", "csv", "json", "xml", ""]),
    "--to": st.sampled_from(["RESOLVED", "PERMANENT", "INVESTIGATING", "UNRESOLVED", "REGRESSED", "x", ""]),
    "--actor": _mostly(["alice", "alice", "system", "vera", "", " ", "a" * 300]),
    "--note": _mostly(["checked", "=HYPERLINK(\"x\")", "🏀 " * 50]),
    "--item": st.one_of(st.sampled_from([
        "precompute_failures:PlayerDailyCacheProcessor:2021-12-31:zachlavine",
        "precompute_failures:Weird%3AProc%253A:2021-12-31:a:b", "precompute_failures::2021-12-31:nullproc",
        "precompute_failures:PlayerDailyCacheProcessor:1850-01-01:old",
        "bogus:x:2021-12-31:y", "precompute_failures:x:2021-02-30:y", ":::", ""]), text),
    "--scale": st.sampled_from(["inf", "1e400", "1e30", "-5", "2k", "nan", "", "1M"]),
    "--seed": _mostly(["7", "0", "-1", "2147483648"]),
    "--batch-size": st.sampled_from(["0", "-1", "1", "1e9", "x", "500"]),
    "--lookback-days": st.sampled_from(["0", "-3", "14", "1000000", "x", "", "30"]),
    "--lookback-games": st.sampled_from(["0", "10", "500", "x"]),
    "--window": _mostly(["PlayerDailyCacheProcessor=5g,10g", "x=14d", "=", "P=0d"]),
    "--method": st.sampled_from(["engine", "oracle", "engine", "x"]), "--all": None, "--dry-run": None,
    "--include-expected": None, "--skip-classify": None, "--create-pipeline-tables": None, "--help-me": None,
}  # fmt: skip


def _valid_options() -> dict[str, list[str]]:
    """Each command's own options, so that most generated command lines get past argparse to the code."""
    from lib.__main__ import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {
        name: sorted(o for a in p._actions for o in a.option_strings if o in OPTIONS)
        for name, p in sub.choices.items()  # type: ignore[union-attr]
    }


VALID = _valid_options()


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    argv = [draw(st.sampled_from(COMMANDS))]
    if draw(st.integers(0, 4)):  # mostly with what the command requires, so that it gets to work
        if argv[0] not in {"items", "nosuch"}:
            argv += ["--actor", draw(st.sampled_from(["alice", "system", "alice"]))]
        if argv[0] == "resolve":
            argv += ["--to", draw(OPTIONS["--to"]), "--note", draw(OPTIONS["--note"])]  # type: ignore[arg-type]
    own = VALID.get(argv[0]) or sorted(OPTIONS)
    pool = draw(st.sampled_from([own, own, own, sorted(OPTIONS)]))
    for name in draw(st.lists(st.sampled_from(pool), max_size=4)):
        strategy = OPTIONS[name]
        argv += [name] if strategy is None else [name, draw(strategy)]
    return argv


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> DuckDBStore:
    store = hostile_store(tmp_path_factory.mktemp("fuzz-cli") / "fuzz.duckdb")
    store.init_schema(pipeline_tables=False)
    key = ItemKey.parse("precompute_failures:PlayerDailyCacheProcessor:2021-12-31:zachlavine")
    resolution.apply(store, resolution.Scope.of_keys([key]), "PERMANENT", actor=Actor("alice"), note="kept")
    return store


def _events(store: DuckDBStore) -> set[str]:
    frame = store.query("SELECT event_id FROM nba_processing.failure_resolutions WHERE item_date > @d",
                        {"d": dt.date(1, 1, 1)})  # fmt: skip
    return set(frame["event_id"])


@pytest.mark.heavy(12)
def test_fuzzed_command_lines_end_in_a_clear_message(cli_db: DuckDBStore) -> None:
    outcomes: dict[object, int] = {}
    base = Path(cli_db.path).parent
    (base / "table.csv").write_text("a,b\n")

    @settings(max_examples=CLI_EXAMPLES, **FUZZ)
    @given(argv=command_lines(),
           where=st.sampled_from(["db", "db", "db", "empty", "folder", "missing", "csv", "bq"]))  # fmt: skip
    def one(argv: list[str], where: str) -> None:
        before = _events(cli_db)
        target = {"db": ["--db", str(cli_db.path)], "empty": ["--db", ""], "folder": ["--db", str(base)],
                  "missing": ["--db", str(base / "no" / "such.duckdb")], "csv": ["--db", str(base / "table.csv")],
                  "bq": ["--bigquery", ""]}[where]  # fmt: skip
        if argv[0] == "demo" and where in {"missing"}:
            target = ["--db", str(cli_db.path)]  # a demo into a new file is a long legitimate write, not bad input
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*argv, *target])
            except SystemExit as exc:  # argparse's own usage message
                code = exc.code if isinstance(exc.code, int) else 2
        outcomes[code] = outcomes.get(code, 0) + 1
        assert code in (0, 1, 2), (argv, code, err.getvalue()[-2000:])
        assert "Traceback" not in err.getvalue() and "unexpected" not in err.getvalue(), (argv, err.getvalue()[-2000:])
        assert code == 0 or err.getvalue().strip(), argv  # a refusal always says why
        assert before <= _events(cli_db)  # no event is ever lost
        if argv[0] in {"items", "resolve"}:  # reads, and changes to existing items, never create a database
            assert not (base / "no").exists(), argv
        shutil.rmtree(base / "no", ignore_errors=True)  # a write command may create a new database: legitimate

    one()
    # The generated command lines must exercise the commands, not only argparse's usage message.
    assert outcomes.get(0, 0) >= 30 and outcomes.get(1, 0) >= 30, outcomes


# -- failure rows -----------------------------------------------------------------------------------
def _row_values() -> st.SearchStrategy[dict[str, object]]:
    maybe_text = st.one_of(st.none(), text)
    return st.fixed_dictionaries({
        "processor_name": st.one_of(st.none(), st.sampled_from(["PlayerDailyCacheProcessor", "a:b", "%25", ""]), text),
        "entity_id": st.one_of(st.none(), st.sampled_from(["zachlavine", "", "a:b:c", "DATE_LEVEL", "LAL"]), text),
        "analysis_date": st.one_of(st.sampled_from([dt.date(2021, 12, 31), dt.date(1, 1, 1), dt.date(9999, 12, 31)]),
                                   st.dates()),
        "failure_category": st.one_of(st.none(), st.sampled_from(["INCOMPLETE_DATA", "INSUFFICIENT_DATA", ""]), text),
        "failure_reason": maybe_text, "run_id": maybe_text, "can_retry": st.one_of(st.none(), st.booleans()),
        "failure_type": st.one_of(st.none(), st.sampled_from(["PLAYER_DNP", "COMPLETE", "NOT_A_TYPE", ""]), text),
        "is_correctable": st.one_of(st.none(), st.booleans()),
        "expected_game_count": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        "actual_game_count": st.one_of(st.none(), st.integers(-1000, 1000)),
        "missing_game_dates": st.one_of(st.none(), st.sampled_from(["[]", "[\"2021-12-30\"]", "[1, 2]", "{\"a\": 1}",
                                        "[\"2021-02-30\"]", "not json", "[\"" + "9" * 300 + "\"]"]), text),
        "raw_data_checked": st.one_of(st.none(), st.booleans()),
        "resolution_status": st.one_of(st.none(), st.sampled_from(["UNRESOLVED", "RESOLVED", "bogus", ""]), text),
    })  # fmt: skip


@pytest.fixture(scope="module")
def row_db(tmp_path_factory: pytest.TempPathFactory) -> DuckDBStore:
    store = hostile_store(tmp_path_factory.mktemp("fuzz-rows") / "rows.duckdb", rows=HOSTILE[:1])
    for col in ("resolution_status",):
        store.execute(f"ALTER TABLE nba_processing.precompute_failures ALTER COLUMN {col} DROP DEFAULT")
    return store


@pytest.mark.heavy(10)
@settings(max_examples=ROW_EXAMPLES, **FUZZ)
@given(batch=st.lists(_row_values(), min_size=13, max_size=16))
def test_fuzzed_failure_rows_render_classify_and_resolve(row_db: DuckDBStore, batch: list[dict[str, object]]) -> None:
    rows = [precompute_row(**values) for values in batch]
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    for col in ("expected_game_count", "actual_game_count"):  # exact to 2**63 - 1 (a float column rounds)
        frame[col] = pd.array([r[col] for r in rows], dtype="Int64")
    row_db.insert_frame("nba_processing.precompute_failures", frame)
    days = [v["analysis_date"] for v in batch]
    first, last = min(days), max(days)  # type: ignore[type-var]
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    f = Filters(date_from=first, date_to=last, hide_expected=False)
    before = _events(row_db)
    try:
        q.kpis(row_db, f)
        q.summary(row_db, f)
        listed = q.list_items(row_db, f, Page(size=200))
        keys = list(listed["key"])
        assert keys, "the row must be an item"
        for n, text in enumerate(keys):
            key = ItemKey.parse(text)
            assert key.text == text
            if n < 3:  # opening an item is one query each: a few per batch
                assert q.get_item(row_db, key) is not None
        patterns.team_dates(row_db, f)
        patterns.streaks(row_db, f)
        workqueue.plan(row_db, f)
        for values in batch[:2]:
            players.items(row_db, str(values["entity_id"] or ""), f)
        classification.run(row_db, actor=SYSTEM, now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC), since=first,
                           until=last, include_classified=True)  # fmt: skip
        resolution.apply(row_db, resolution.Scope.of_keys(keys), "INVESTIGATING", actor=Actor("alice"), note="fuzz")
        resolution.sync_statuses(row_db, actor=SYSTEM, since=first, until=last)
    except TriageError as exc:  # a refusal is fine if it says what happened
        assert exc.what.strip()
    assert before <= _events(row_db)


# -- links ------------------------------------------------------------------------------------------
LINK_KEYS = ["from", "to", "table", "processor", "category", "type", "correctable", "status", "entity",
             "hide_expected", "item", "incident", "player", "page", "sort", "changed", "since", "compare"]  # fmt: skip
PAGES = ["", "views/triage/failures.py", "views/triage/incidents.py", "views/triage/player.py",
         "views/triage/patterns.py", "views/triage/work.py",
         "views/triage/settling.py", "views/audit/activity.py"]  # fmt: skip


@pytest.fixture(scope="module")
def link_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(hostile_store(tmp_path_factory.mktemp("fuzz-links") / "links.duckdb").path)


@pytest.mark.heavy(13)
@settings(max_examples=LINK_EXAMPLES, **FUZZ)
@given(params=st.dictionaries(st.sampled_from(LINK_KEYS), st.lists(st.one_of(dates, text), min_size=1, max_size=3),
                              max_size=5), page=st.sampled_from(PAGES))  # fmt: skip
def test_fuzzed_links_render_every_page(link_db: Path, params: dict[str, list[str]], page: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIAGE_DB", str(link_db))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        if page:
            at.run()
            at.switch_page(page)
        for key, values in params.items():
            at.query_params[key] = [v.replace("\x00", "") for v in values]
        at.run()
        assert not at.exception, (params, page, [e.value[:800] for e in at.exception])
