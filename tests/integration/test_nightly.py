"""The nightly job end to end, as a scheduler runs it: the command line, on both engines, twice in a row,
posting to a webhook served by the test.

Before the first run a team resolved an item two days ago, and last night a run recorded it again (a
regression); the pipeline's rows are unclassified, as it leaves them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lib import demo, incidents, resolution
from lib import nightly as job
from lib.access import SYSTEM
from lib.model import Actor, Filters, Page
from lib.store import DuckDBStore, Store
from lib.store import queries as q
from tests import bq
from tests.conftest import ROOT, precompute_row
from tests.servers import HookServer

SINCE, UNTIL = dt.date(2022, 4, 4), dt.date(2022, 4, 10)
SNAPSHOT = {  # every table the job may write, in a stable order (evidence without its "judged at" stamp)
    "precompute_failures": "SELECT * FROM nba_processing.precompute_failures",
    "analytics_failures": "SELECT * FROM nba_processing.analytics_failures",
    "prediction_failures": "SELECT * FROM nba_processing.prediction_failures",
    "failure_resolutions": "SELECT * FROM nba_processing.failure_resolutions",
    "classification_changes": "SELECT * FROM nba_processing.classification_changes",
    "failure_missing_games": (
        "SELECT source_table, processor_name, run_id, analysis_date, entity_id, game_date, game_id, team_abbr, "
        "verdict, is_correctable, dnp_reason FROM nba_processing.failure_missing_games"
    ),
}


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    out = {}
    for name, sql in SNAPSHOT.items():
        frame = store.query(sql)
        out[name] = frame.sort_values(list(frame.columns), ignore_index=True, key=lambda c: c.astype(str))
    return out


def prepare(store: Store) -> str:
    """A resolved item that a run recorded again last night; returns its key."""
    now = dt.datetime.now(dt.UTC)
    day = Filters(date_from=UNTIL, date_to=UNTIL, tables=("precompute_failures",), hide_expected=False)
    key = str(q.list_items(store, day, Page(1, 1))["key"].iloc[0])
    resolution.apply(store, resolution.Scope.of_keys([key]), "RESOLVED", actor=Actor("alice"), note="re-ran PDC",
                     now=now - dt.timedelta(hours=48))  # fmt: skip
    _, processor, _, entity = key.split(":", 3)
    again = pd.Timestamp(now - dt.timedelta(hours=3))
    row = precompute_row(processor_name=processor, analysis_date=UNTIL, entity_id=entity, run_id="re", created_at=again)
    frame = pd.DataFrame([row])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.insert_frame("nba_processing.precompute_failures", frame)
    return key


def nightly(target: list[str], env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any], str]:
    run = subprocess.run(
        [sys.executable, "-m", "lib", "nightly", *target, "--since", str(SINCE), "--until", str(UNTIL), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    lines = run.stdout.splitlines()
    assert len(lines) == 1, f"one JSON line on stdout, got {run.stdout!r}; stderr: {run.stderr}"
    return run.returncode, json.loads(lines[0]), run.stderr


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=[pytest.mark.bigquery, pytest.mark.heavy(35)])])
def target(request: pytest.FixtureRequest, tmp_path: Path, demo_db_path: Path,
           demo_season: demo.Demo) -> tuple[Store, list[str], dict[str, str]]:  # fmt: skip
    env = {**os.environ, "TRIAGE_WEBHOOK_URL": "", "TRIAGE_DASHBOARD_URL": ""}
    if request.param == "duckdb":
        db = tmp_path / "nightly.duckdb"
        shutil.copy(demo_db_path, db)
        return DuckDBStore(db), ["--db", str(db)], env
    emulator = request.getfixturevalue("emulator")
    store = bq.store(emulator, "nightly")
    store.init_schema()
    demo.write(store, demo_season, actor=SYSTEM)
    names = {f"TRIAGE_BQ_DATASET_{d.removeprefix('nba_').upper()}": v for d, v in bq.datasets("nightly").items()}
    return store, ["--bigquery", bq.PROJECT], {**env, "TRIAGE_BQ_ENDPOINT": emulator, **names}


_CAUSES = """
SELECT
  (SELECT COUNT(*) FROM (SELECT DISTINCT cause, game_id, team_abbr, source_table, processor_name, item_date, entity_id
     FROM nba_processing.incident_links WHERE item_date BETWEEN @a AND @b) AS l) AS links,
  (SELECT COUNT(*) FROM (SELECT DISTINCT verdict, game_id, team_abbr, source_table, processor_name, analysis_date,
     entity_id FROM nba_processing.failure_missing_games
     WHERE analysis_date BETWEEN @a AND @b AND verdict IN ('RAW_DATA_GAP', 'ANALYTICS_GAP', 'NAME_UNRESOLVED')) AS e
  ) AS evidence"""


def test_the_nightly_job_twice_in_a_row(target: tuple[Store, list[str], dict[str, str]], tmp_path: Path) -> None:
    store, where, env = target
    key = prepare(store)
    unclassified = q.count_items(store, Filters(date_from=SINCE, date_to=UNTIL, failure_types=("UNCLASSIFIED",),
                                                hide_expected=False))  # fmt: skip
    assert unclassified > 0
    # Nothing in the range was judged by the dashboard yet: the job judges every item, the pipeline's included.
    unclassified = q.count_items(store, Filters(date_from=SINCE, date_to=UNTIL, hide_expected=False))
    with HookServer([200]) as hook:
        env = {**env, "TRIAGE_WEBHOOK_URL": hook.url}
        args = ["--digest", str(tmp_path / "digest.md"), "--dashboard-url", "http://triage.example:8501",
                "--max-new-regressions", "0"]  # fmt: skip
        code, first, progress = nightly(where, env, *args)
        assert code == 3, progress  # done, but one regression is over the threshold of none
        assert first["outcome"] == "attention" and first["thresholds_exceeded"] == ["1 new regressions (threshold 0)"]
        assert first["classified"] == unclassified and first["changes"]["regressed"] == 1
        assert first["webhook"].startswith("posted to http://127.0.0.1") and "s3cr3t" not in progress
        assert "Classifying" in progress and "Auto-resolving" in progress  # progress goes to stderr
        after_first = snapshot(store)
        # The auto-resolve judged again what the classification had just judged: every root cause the evidence
        # names was kept for its incident before the evidence was replaced, once (lib/classification.py).
        causes = store.query(_CAUSES, {"a": SINCE, "b": UNTIL}).iloc[0]
        assert int(causes["links"]) == int(causes["evidence"]) > 0
        listed = incidents.incidents(store, Filters(date_from=SINCE, date_to=UNTIL), now=dt.datetime.now(dt.UTC))
        assert {"ANALYTICS_GAP", "NAME_UNRESOLVED"} <= set(listed["kind"]) and (listed["open_items"] > 0).all()

        code, second, _ = nightly(where, env, *args)
        assert code == 3
        assert (second["classified"], second["auto_resolved"], second["synced_rows"]) == (0, 0, 0)
        assert second["changes"] == first["changes"]
        after_second = snapshot(store)
        for name, frame in after_first.items():  # the second run changed nothing
            pd.testing.assert_frame_equal(after_second[name], frame, check_dtype=False, obj=name)

    # The same message twice (but for the comparison point, which moves with the clock).
    texts = [re.sub(r"since \S+ \S+ UTC", "since T", str(m["text"])) for m in hook.received]
    assert len(texts) == 2 and texts[0] == texts[1]
    message = hook.received[0]
    assert "Regressed" in json.dumps(message["blocks"]) and message["text"].startswith(":warning: 1 new regressions")
    digest = json.loads((tmp_path / "digest.json").read_text())
    assert digest["changes"]["regressed"]["items"] == 1 and digest["new_regressions"][0]["key"] == key
    link = digest["changes"]["regressed"]["link"]
    assert link.startswith("http://triage.example:8501/failures?from=2022-04-04&to=2022-04-10&changed=regressed&since=")
    markdown = (tmp_path / "digest.md").read_text()
    assert f"`{key}`" in markdown and "[Regressed](http://triage.example:8501/failures?" in markdown
    # What the job did is what the dashboard shows: nothing left unclassified, the regression listed.
    assert q.count_items(store, Filters(date_from=SINCE, date_to=UNTIL, failure_types=("UNCLASSIFIED",),
                                        hide_expected=False)) == 0  # fmt: skip
    since = dt.datetime.fromisoformat(digest["compared_with"])
    regressed = q.list_items(store, Filters(date_from=SINCE, date_to=UNTIL, changed="regressed", changed_since=since,
                                            hide_expected=False), Page(1, 10))  # fmt: skip
    assert list(regressed["key"]) == [key]


def test_a_refused_post_keeps_the_work_and_says_so(demo_store: DuckDBStore, tmp_path: Path) -> None:
    env = {**os.environ, "TRIAGE_DASHBOARD_URL": ""}
    with HookServer([404]) as hook:
        code, summary, progress = nightly(["--db", str(demo_store.path), "--webhook", hook.url, "--digest",
                                           str(tmp_path / "d.md")], env)  # fmt: skip
    assert code == 4 and summary["outcome"] == "not posted" and summary["webhook"].startswith("failed: ")
    assert "404" in progress and "s3cr3t" not in progress + json.dumps(summary)
    assert summary["classified"] > 0 and (tmp_path / "d.md").exists() and (tmp_path / "d.json").exists()
    assert q.count_items(demo_store, Filters(date_from=SINCE, date_to=UNTIL, failure_types=("UNCLASSIFIED",),
                                             hide_expected=False)) == 0  # fmt: skip


def test_a_job_that_cannot_write_fails_with_its_own_exit_code(demo_store: DuckDBStore, tmp_path: Path) -> None:
    path = Path(demo_store.path)
    path.chmod(0o444)
    try:
        code, summary, progress = nightly(["--db", str(path)], {**os.environ})
    finally:
        path.chmod(0o644)
    assert code == 1 and summary["outcome"] == "failed" and summary["failed_step"]
    assert "read-only" in summary["error"].lower() or "read only" in summary["error"].lower(), summary
    assert "error: the" in progress


def test_bad_arguments_exit_2(demo_store: DuckDBStore) -> None:
    for extra in (["--webhook", "not-a-url"], ["--compare-to", "yesterday"], ["--max-new-regressions", "-1"]):
        run = subprocess.run([sys.executable, "-m", "lib", "nightly", "--db", str(demo_store.path), *extra], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
        assert run.returncode in (1, 2) and run.stderr.startswith(("error", "usage")), (extra, run.stderr)
        assert "Traceback" not in run.stderr


def test_the_operations_log_records_each_run(demo_store: DuckDBStore) -> None:
    from lib import nightly as job

    result = job.run(demo_store, actor=SYSTEM, now=dt.datetime.now(dt.UTC), since=SINCE, until=UNTIL)
    assert result.exit_code == 0 and result.brief is not None
    log = demo_store.query("SELECT kind, actor, origin, outcome FROM nba_processing.triage_operations")
    assert {("nightly", SYSTEM.name, "nightly", "done")} <= set(map(tuple, log.to_numpy().tolist()))


def test_the_digest_counts_the_settlements_the_job_stamped_when_it_wrote_them(demo_store: DuckDBStore) -> None:
    """The job's auto-resolve stamps its events when it writes them, after the job's start: the digest, whose period
    ends at the job's start, still counts them (its "now" is the data as it is when the digest is made)."""
    started = dt.datetime(2022, 4, 15, 9, 0, tzinfo=dt.UTC)
    written = started + dt.timedelta(minutes=10)
    result = job.run(demo_store, actor=SYSTEM, now=started, since=dt.date(2022, 3, 1), until=dt.date(2022, 3, 10),
                         compare_to=started - dt.timedelta(days=1), clock=lambda: written)  # fmt: skip
    assert result.failed_step == "", result.problem
    events = demo_store.query(
        "SELECT MIN(at) AS first FROM nba_processing.failure_resolutions WHERE origin = 'autoresolve'"
    )
    assert result.auto_resolved > 0 and pd.Timestamp(events["first"].iloc[0]) >= pd.Timestamp(written)
    assert result.brief.counts["settled"] == result.auto_resolved
