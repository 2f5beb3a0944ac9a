"""The whole loop in chromium, against the Pub/Sub emulator: an incident, the re-run preview, the request with its
note, pending; the test plays the pipeline (pulls each message, records its run with the message id, restores
the missing box score); then the incident and its request read settled."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from lib import incidents, resolution
from lib.access import SYSTEM
from lib.store import DuckDBStore
from tests import gaps
from tests.conftest import CLASSIFIED_AT
from tests.e2e.conftest import ARTIFACTS, serve
from tests.pubsub import PROJECT, Pipeline

WAIT = 120_000
NOW = CLASSIFIED_AT  # when the session's classified demo was judged (tests/conftest.py)


@pytest.fixture(scope="module")
def loop_db(classified_demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("fix-loop") / "loop.duckdb"
    shutil.copy(classified_demo_path, db)  # judged at NOW
    return db


@pytest.fixture(scope="module")
def loop_server(loop_db: Path, pubsub: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"PUBSUB_EMULATOR_HOST": pubsub, "TRIAGE_PUBSUB_PROJECT": PROJECT, "TRIAGE_OPERATOR": "alice"}
    yield from serve(loop_db, tmp_path_factory.mktemp("fix-loop-log"), env)


def _shot(page: Page, name: str) -> None:
    """The whole page at 1280 and 1600 px wide (the viewport made as tall as the page: Streamlit scrolls inside)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 1600):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(700)
        height = page.evaluate(
            "() => (document.querySelector('[data-testid=\"stMain\"]') || document.body).scrollHeight"
        )
        page.set_viewport_size({"width": width, "height": min(max(800, int(height) + 50), 6000)})
        page.wait_for_timeout(700)
        page.screenshot(path=str(ARTIFACTS / f"fix-loop-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1500, "height": 1300})


def test_from_an_incident_to_a_request_to_the_settlement(loop_server: str, loop_db: Path, pubsub: str, page: Page,
                                                         demo_season) -> None:  # fmt: skip
    pipeline = Pipeline(pubsub, f"e2e{uuid.uuid4().hex[:6]}")
    gid, team = demo_season.injected["side_gaps"][0].split(":")
    incident = incidents.IncidentId("RAW_DATA_GAP", gid, team).text
    day = pd.Timestamp(gaps.game(demo_season, gid)["game_date"]).date()
    window = f"from={day.isoformat()}&to={(day + dt.timedelta(days=21)).isoformat()}"
    page.goto(f"{loop_server}/incidents?{window}&incident={quote(incident)}")
    expect(page.get_by_role("heading", name=re.compile(f"No box score: {team} side of game {gid}"))).to_be_visible(
        timeout=WAIT
    )
    page.get_by_role("button", name="Preview the re-run").click(timeout=WAIT)
    expect(page.get_by_text(re.compile(r"\d+ message\(s\) over \d+ date\(s\), in recovery order"))).to_be_visible(
        timeout=WAIT
    )
    _shot(page, "preview")
    page.get_by_role("button", name=re.compile(r"^Send \d+ message")).click(timeout=WAIT)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    dialog.get_by_role("button", name="Confirm the request").click(timeout=WAIT)
    expect(dialog.get_by_text("A note is required")).to_be_visible(timeout=WAIT)  # nothing sent without a note
    dialog.get_by_label(re.compile("Note")).fill(f"{team} box score of {gid} never arrived")
    dialog.get_by_role("button", name="Confirm the request").click(timeout=WAIT)
    expect(page.get_by_text(re.compile(r"Requests for this incident \(1\)"))).to_be_visible(timeout=WAIT)
    expect(
        page.get_by_text(re.compile(r"Request pending · asked by alice .* message\(s\): \d+ pending"))
    ).to_be_visible(timeout=WAIT)
    _shot(page, "pending")

    # The pipeline: every phase 4 message is pulled and run; the box score and phase 3 rows arrive.
    store = DuckDBStore(loop_db)
    sent = store.query(
        "SELECT processors, data_date, message_id, kind FROM nba_processing.rerun_requests "
        "WHERE data_date BETWEEN @a AND @b AND outcome = 'sent'",
        {"a": dt.date(2021, 1, 1), "b": dt.date(2023, 1, 1)},
    )
    phase4 = sent[sent["kind"] == "phase4"]
    got = pipeline.pull("nba-phase4-trigger", expect=len(phase4))
    assert sorted(m.message_id for m in got) == sorted(phase4["message_id"])
    gaps.restore_side(store, demo_season, gid, team)
    at = pd.Timestamp(dt.datetime.now(dt.UTC))
    runs = pd.DataFrame([
        {"processor_name": p, "run_id": f"run-{m.message_id}", "status": "success",
         "data_date": dt.date.fromisoformat(json.loads(m.data)["analysis_date"]), "started_at": at,
         "processed_at": at, "trigger_source": "pubsub", "trigger_message_id": m.message_id,
         "trigger_message_data": m.data.decode()}
        for m in got for p in json.loads(m.data)["processors"]
    ])  # fmt: skip
    store.insert_frame("nba_reference.processor_run_history", runs)
    resolution.autoresolve(store, actor=SYSTEM, now=dt.datetime.now(dt.UTC))

    page.goto(f"{loop_server}/incidents?{window}&incident={quote(incident)}")
    expect(page.get_by_role("heading", name=re.compile(f"No box score: {team} side"))).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(re.compile(r"state \*?\*?settled|state settled"))).to_be_visible(timeout=WAIT)
    expect(
        page.get_by_text(re.compile(r"Request settled · asked by alice .* message\(s\): \d+ settled ·"))
    ).to_be_visible(timeout=WAIT)
    _shot(page, "settled")

    # Settling closes the loop: the request reads settled by re-run, with its time from request to settlement.
    page.goto(f"{loop_server}/settling?{window}")
    expect(page.get_by_role("heading", name="Re-run requests: from request to settlement")).to_be_visible(timeout=WAIT)
    tile = page.get_by_test_id("stMetric").filter(has_text="Settled by re-run")
    expect(tile).to_contain_text("1", timeout=WAIT)
    expect(page.get_by_test_id("stMetric").filter(has_text="Median to settle")).to_contain_text(
        re.compile(r"under 1 min|\d+ min|\d+\.\d (hours|days)"), timeout=WAIT
    )
    _shot(page, "settling")
