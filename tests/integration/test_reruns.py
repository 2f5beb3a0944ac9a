"""Re-run requests on the classified demo season, against the real Pub/Sub emulator: the request goes out in
recovery order, the test plays the pipeline (pulls each message, records its run with the message id, restores the
missing rows), and the request is followed until its items are settled; refusals lose nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest

from lib import incidents, nightly, reruns, resolution
from lib.access import SYSTEM, NotAllowed
from lib.errors import BadInput
from lib.model import Actor, Filters, Role
from lib.store import DuckDBStore, Store
from tests import gaps
from tests.conftest import CLASSIFIED_AT, ROOT, precompute_row
from tests.pubsub import PROJECT, Pipeline
from tests.servers import HookServer

SEASON = Filters(date_from=dt.date(2021, 10, 19), date_to=dt.date(2022, 4, 10))
NOW = CLASSIFIED_AT  # when the session's classified demo was judged (tests/conftest.py)
ALICE, BOB = Actor("alice"), Actor("bob")


@pytest.fixture
def store(classified_demo_path: Path, tmp_path: Path) -> DuckDBStore:
    copy = tmp_path / "r.duckdb"
    copy.write_bytes(classified_demo_path.read_bytes())  # judged at NOW
    s = DuckDBStore(copy)
    s.init_schema(pipeline_tables=False)
    return s


@pytest.fixture
def pipeline(pubsub: str) -> Pipeline:
    return Pipeline(pubsub, f"t{uuid.uuid4().hex[:8]}")


def _settings(**extra: str) -> reruns.RerunSettings:
    return reruns.RerunSettings.from_mapping({"TRIAGE_PUBSUB_PROJECT": PROJECT, **extra})


def _side(demo_season) -> tuple[str, str, str]:
    gid, team = demo_season.injected["side_gaps"][0].split(":")
    return gid, team, incidents.IncidentId("RAW_DATA_GAP", gid, team).text


def _run_row(m, status: str, *, processor: str, day: dt.date, at: dt.datetime, errors: object = None) -> dict:
    return {"processor_name": processor, "run_id": f"run-{uuid.uuid4().hex[:8]}", "season_year": 2021,
            "status": status, "data_date": day, "started_at": pd.Timestamp(at), "processed_at": pd.Timestamp(at),
            "phase": "phase_4_precompute", "trigger_source": "pubsub", "trigger_message_id": m.message_id,
            "trigger_message_data": m.data.decode(), "errors": json.dumps(errors) if errors is not None else None,
            "triggered_by": "nba-phase4-trigger"}  # fmt: skip


def _record_runs(store: Store, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    for column in ("started_at", "processed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    store.insert_frame("nba_reference.processor_run_history", frame)


def test_a_request_goes_out_in_recovery_order_and_is_followed_until_settled(store, pipeline, demo_season) -> None:
    gid, team, incident = _side(demo_season)
    settings = _settings()
    plan = reruns.plan_incident(store, SEASON, incident, settings, now=NOW)
    steps = [m.step for m in plan.messages]
    assert steps == sorted(steps) and plan.messages[0].kind == "scrape" and plan.messages[1].kind == "phase3"
    stages = [m.stage for m in plan.messages]
    assert stages.index("phase 3") < stages.index("PDC") and all(m.payload.get("skip_downstream_trigger")
                                                                for m in plan.messages)  # fmt: skip
    open_keys = incidents.incident_items(store, SEASON, incidents.IncidentId.parse(incident))
    open_keys = set(open_keys[open_keys["open_in_incident"]]["key"])
    asked = {k.text for m in plan.messages for k in m.items}
    assert asked == open_keys  # only what failed and is open, every item of it

    sent = reruns.send(store, plan, ALICE, note="ORL box score never arrived", settings=settings, now=NOW)
    assert sent.sent == len(plan.messages) and not sent.failed
    phase4 = [m for m in plan.messages if m.kind == "phase4"]
    got = pipeline.pull("nba-phase4-trigger", expect=len(phase4))
    assert len(got) == len(phase4)
    bodies = {json.loads(m.data)["correlation_id"]: m for m in got}
    outcomes = {o["correlation_id"]: o for o in sent.outcomes}
    for cid, m in bodies.items():
        body = json.loads(m.data)
        assert m.attributes["correlation_id"] == cid and m.attributes["requested_by"] == "alice"
        assert body["trigger_source"] == "triage-console" and outcomes[cid]["message_id"] == m.message_id
        assert body["processors"] == outcomes[cid]["processors"].split(",")
        assert body["analysis_date"] == outcomes[cid]["data_date"].isoformat()
    (p3,) = pipeline.pull("nba-phase3-trigger", expect=1)
    assert json.loads(p3.data)["mode"] == "reprocess_specific_date"
    followed = reruns.follow(store, SEASON, settings, now=NOW + dt.timedelta(minutes=5))
    assert set(followed["state"]) == {"pending"} and len(followed) == len(plan.messages)
    assert reruns.follow(store, SEASON, settings, now=NOW + dt.timedelta(hours=7))["state"].eq("stale").all()

    # Asked again while pending: nothing is sent twice unless forced.
    again = reruns.plan_incident(store, SEASON, incident, settings, now=NOW + dt.timedelta(minutes=6))
    assert not again.messages and {p for m in again.skipped for p in m.pending} == {sent.request_id}
    forced = reruns.plan_incident(store, SEASON, incident, settings, now=NOW + dt.timedelta(minutes=6), force=True)
    assert len(forced.messages) == len(plan.messages)

    # The pipeline plays: the first PDC run fails, everything else runs; then the data is back.
    later = NOW + dt.timedelta(minutes=20)
    first_pdc = next(m for m in got if json.loads(m.data)["processors"] == ["PlayerDailyCacheProcessor"])
    pdc_day = dt.date.fromisoformat(json.loads(first_pdc.data)["analysis_date"])
    _record_runs(store, [_run_row(first_pdc, "failed", processor="PlayerDailyCacheProcessor", day=pdc_day, at=later,
                                  errors=["upstream table player_game_summary incomplete"])])  # fmt: skip
    followed = reruns.follow(store, SEASON, settings, now=later + dt.timedelta(minutes=1))
    failing = followed[followed["message_id"] == first_pdc.message_id].iloc[0]
    assert failing["state"] == "still failing" and "player_game_summary incomplete" in failing["detail"]

    gaps.restore_side(store, demo_season, gid, team)
    runs = []
    for m in got:
        body = json.loads(m.data)
        for p in body["processors"]:
            runs.append(_run_row(m, "success", processor=p, day=dt.date.fromisoformat(body["analysis_date"]),
                                 at=later + dt.timedelta(minutes=30)))  # fmt: skip
    _record_runs(store, runs)
    resolution.autoresolve(store, actor=SYSTEM, now=later + dt.timedelta(hours=1))
    followed = reruns.follow(store, SEASON, settings, now=later + dt.timedelta(hours=1, minutes=5))
    assert followed["state"].eq("settled").all(), followed[["stage", "data_date", "state", "detail"]]
    asked_req = reruns.requests(followed).iloc[0]
    assert asked_req["state"] == "settled"
    # Time to settle: from the claim the sender wrote to the last settling event of an asked item, read from the
    # audit trail's own rows (not from what follow computed).
    claimed = store.query("SELECT MIN(at) AS t FROM nba_processing.rerun_requests WHERE data_date BETWEEN @a AND @b "
                          "AND request_id = @r", {"a": dt.date(2000, 1, 1), "b": dt.date(2100, 1, 1),
                                                  "r": sent.request_id}).iloc[0]["t"]  # fmt: skip
    settled_events = store.query(
        "SELECT item_key, MAX(at) AS t FROM nba_processing.failure_resolutions WHERE item_date BETWEEN @a AND @b "
        "AND to_status IN ('RESOLVED', 'PERMANENT') GROUP BY item_key",
        {"a": SEASON.date_from, "b": SEASON.date_to},
    ).set_index("item_key")["t"]
    settled_keys = [k for k in asked if k in settled_events.index]
    assert settled_keys  # the others stopped waiting when their new verdict no longer named the cause
    last_settled = max(pd.Timestamp(settled_events[k]) for k in settled_keys)
    assert last_settled == pd.Timestamp(later + dt.timedelta(hours=1))  # the auto-resolve that settled them
    assert pd.Timestamp(asked_req["settled_at"]) == last_settled
    expected = (last_settled - pd.Timestamp(claimed)).total_seconds() / 3600
    assert asked_req["hours_to_settle"] == pytest.approx(expected) and expected > 1
    hours = reruns.settle_hours(reruns.requests(followed))
    assert hours["settled"] == hours["timed"] == 1 and hours["median"] == pytest.approx(expected)
    digest = nightly._rerun_digest(reruns.requests(followed))
    assert digest["by_state"] == {"settled": 1} and digest["time_to_settle"]["median"] == pytest.approx(expected)
    row = incidents.incidents(store, SEASON, now=NOW, settled=True).set_index("incident_id").loc[incident]
    assert row["state"] == "settled" and row["settled_items"] == row["items"]


def test_an_incident_with_its_own_fix_does_not_wait_for_another_requests_run(store, demo_season) -> None:
    """A box-score gap needs its re-scrape before its processors run again: a run another request asked for may
    start before that fix and settle nothing of it, so it is asked for again; a plan without a fix of its own
    still leaves a pending processor and date out."""
    _, _, incident = _side(demo_season)
    settings = reruns.RerunSettings.from_mapping({})  # recorded: the claims are what is tested
    plan = reruns.plan_incident(store, SEASON, incident, settings, now=NOW)
    step = next(m for m in plan.messages if m.kind == "phase4")
    processor, day = step.processors[0], step.data_date
    one_day = Filters(date_from=day, date_to=day)
    first = reruns.plan_processor(store, one_day, processor, settings, now=NOW)
    reruns.send(store, first, BOB, note="the processor's own failures", settings=settings, now=NOW)

    again = reruns.plan_incident(store, SEASON, incident, settings, now=NOW + dt.timedelta(minutes=1))
    assert not again.skipped
    assert any(processor in m.processors and m.data_date == day for m in again.messages)
    sent = reruns.send(store, again, ALICE, note="ORL box score", settings=settings,
                       now=NOW + dt.timedelta(minutes=2))  # fmt: skip
    assert sent.duplicates == 0 and not sent.failed  # within the race window, yet not a duplicate
    later = reruns.plan_processor(store, one_day, processor, settings, now=NOW + dt.timedelta(minutes=3))
    assert not later.messages and later.skipped  # no fix of its own: the pending runs serve it


def test_two_resolvers_pressing_at_once_send_one_message(store, pipeline) -> None:
    settings = _settings()
    plan = reruns.plan_processor(store, Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 6)),
                                 "PlayerDailyCacheProcessor", settings, now=NOW)  # fmt: skip
    assert plan.messages
    results: dict[str, reruns.Sent] = {}
    errors: list[BaseException] = []

    def press(who: Actor) -> None:
        try:
            results[who.name] = reruns.send(DuckDBStore(store.path), plan, who, note="same time", settings=settings,
                                            now=NOW)  # fmt: skip
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=press, args=(a,)) for a in (ALICE, BOB)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    got = pipeline.pull("nba-phase4-trigger", expect=len(plan.messages), timeout=30)
    days = sorted(json.loads(m.data)["analysis_date"] for m in got)
    assert days == sorted(m.data_date.isoformat() for m in plan.messages)  # each date once
    assert sorted([results["alice"].sent, results["bob"].sent]) == [0, len(plan.messages)]
    assert results["alice"].duplicates + results["bob"].duplicates == len(plan.messages)


class _LateClaimStore(DuckDBStore):
    """The real DuckDB file, with the worst interleaving made certain: another resolver's claim, taken (its id
    drawn) before ours, lands just after our first look at the claims."""

    def __init__(self, path: Path, late: pd.DataFrame) -> None:
        super().__init__(path)
        self.late, self.looks = late, 0

    def query(self, sql, params=None, *, label=""):  # type: ignore[no-untyped-def]
        out = super().query(sql, params, label=label)
        if "LOGICAL_OR(outcome IN ('failed', 'duplicate'))" in sql:
            self.looks += 1
            if self.looks == 1:
                self.insert_frame("nba_processing.rerun_requests", self.late)
        return out


@pytest.mark.parametrize("late_is_earlier", [True, False], ids=["earlier-claim-lands-late", "later-claim"])
def test_a_claim_that_lands_after_the_first_look_still_decides_one_sender(store, late_is_earlier: bool) -> None:
    settings = reruns.RerunSettings.from_mapping({})  # recorded, not published: the claims are what is tested
    window = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 6))
    plan = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
    assert plan.messages
    other = reruns.claim_id() if late_is_earlier else "f" * 32  # drawn before ours, or sorting after it
    late = reruns._frame([reruns._row(other, plan, m, n, BOB, "bob pressed too", "claimed", NOW)
                          for n, m in enumerate(plan.messages)])  # fmt: skip
    racing = _LateClaimStore(store.path, late)
    sent = reruns.send(racing, plan, ALICE, note="alice pressed", settings=settings, now=NOW)
    assert racing.looks == 2  # the second look happened
    if late_is_earlier:  # bob's claim was first: alice yields on every message although her first look missed it
        assert sent.sent == 0 and sent.duplicates == len(plan.messages)
        assert all(other in o["error"] for o in sent.outcomes)
    else:  # bob's claim sorts after alice's: she sends, and bob, looking, would yield to her
        assert sent.sent == len(plan.messages) and sent.duplicates == 0
        assert reruns._lost_races(store, plan, other, NOW) == {m.key: sent.request_id for m in plan.messages}


def test_claim_ids_sort_in_the_order_they_were_taken() -> None:
    ids = [reruns.claim_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize("answer", [403, 500, ("slow", 5, 200)], ids=["forbidden", "server-error", "timeout"])
def test_a_refused_request_is_recorded_failed_and_nothing_is_marked_requested(store, answer) -> None:
    with HookServer([answer]) as hook:
        settings = _settings(TRIAGE_RERUN_PHASE4=f"http:{hook.url}", TRIAGE_RERUN_TIMEOUT="2")
        window = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 6))
        plan = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
        sent = reruns.send(store, plan, ALICE, note="try", settings=settings, now=NOW)
    assert sent.sent == 0 and len(sent.failed) == len(plan.messages)
    first = sent.failed[0]["error"]
    assert (str(answer) in first) if isinstance(answer, int) else ("did not answer" in first)
    assert all("not sent" in o["error"] for o in sent.failed[1:])  # a failed step stops the ones after it
    followed = reruns.follow(store, window, settings, now=NOW)
    assert set(followed["state"]) == {"failed"}
    again = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
    assert len(again.messages) == len(plan.messages)  # nothing pending: it can be asked for again


def test_a_missing_topic_is_a_clear_failure(store, pipeline) -> None:
    settings = _settings(TRIAGE_RERUN_PHASE4="pubsub:no-such-topic")
    window = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 3))
    plan = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
    sent = reruns.send(store, plan, ALICE, note="try", settings=settings, now=NOW)
    assert sent.sent == 0 and "does not exist" in sent.failed[0]["error"]


def test_nothing_configured_records_the_request_and_says_how_to_send_it(store) -> None:
    settings = reruns.RerunSettings.from_mapping({})
    assert not settings.configured
    window = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 3))
    plan = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
    assert all(m.destination.type == "none" for m in plan.messages)
    assert "TRIAGE_PUBSUB_PROJECT" in plan.messages[0].destination.why_none
    assert plan.messages[0].command().startswith("gcloud pubsub topics publish nba-phase4-trigger")
    sent = reruns.send(store, plan, ALICE, note="by hand", settings=settings, now=NOW)
    assert {o["outcome"] for o in sent.outcomes} == {"recorded"} and all(not o["message_id"] for o in sent.outcomes)
    # Each item's history says who asked for its re-run, when and how it went.
    first = plan.messages[0]
    asked = reruns.item_requests(store, first.items[0])
    assert list(asked["actor"]) == ["alice"] and list(asked["outcome"]) == ["recorded"]
    assert asked.iloc[0]["stage"] == first.stage and asked.iloc[0]["note"] == "by hand"
    other = next(m for m in plan.messages if m.data_date != first.data_date)
    assert first.items[0] not in other.items and len(reruns.item_requests(store, other.items[0])) == 1


def test_viewers_notes_and_the_cap_are_refused_in_lib_and_nothing_is_written(store) -> None:
    settings = _settings(TRIAGE_RERUN_MAX_DATES="2")
    plan = reruns.plan_processor(store, SEASON, "PlayerDailyCacheProcessor", settings, now=NOW)
    assert len(plan.dates) > 2
    with pytest.raises(NotAllowed):
        reruns.send(store, plan, Actor("vera", Role.VIEWER), note="x", settings=settings, now=NOW)
    with pytest.raises(BadInput, match="note"):
        reruns.send(store, plan, ALICE, note="   ", settings=settings, now=NOW)
    with pytest.raises(BadInput, match="at most 2"):
        reruns.send(store, plan, ALICE, note="x", settings=settings, now=NOW)
    assert store.query("SELECT COUNT(*) AS n FROM nba_processing.rerun_requests WHERE data_date BETWEEN @a AND @b",
                       {"a": dt.date(1, 1, 1), "b": dt.date(9999, 1, 1)}).iloc[0]["n"] == 0  # fmt: skip
    with pytest.raises(ValueError, match="TRIAGE_RERUN_PHASE4"):
        reruns.RerunSettings.from_mapping({"TRIAGE_RERUN_PHASE4": "ftp:x"})


def test_the_command_line_previews_then_sends(store, pipeline, pubsub: str, demo_season) -> None:
    _, _, incident = _side(demo_season)
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": pubsub, "TRIAGE_PUBSUB_PROJECT": PROJECT}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lib", "rerun", "--db", str(store.path), "--since", "2021-10-19",
                               "--until", "2022-04-10", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip

    preview = cli("--incident", incident)
    assert preview.returncode == 0, preview.stderr
    assert "nba-phase4-trigger" in preview.stdout and "re-scrape" in preview.stdout and "--send" in preview.stdout
    assert pipeline.pull("nba-phase4-trigger", expect=0, timeout=3) == []  # a preview sends nothing
    refused = cli("--incident", incident, "--send", "--actor", "alice")
    assert refused.returncode == 2 and "--note" in refused.stderr
    for bad in ("3-1", "x", "0-2"):
        wrong = cli("--incident", incident, "--steps", bad)
        assert wrong.returncode == 2 and "--steps" in wrong.stderr, (bad, wrong.stderr)
    absent = cli("--incident", incident, "--steps", "1-40")
    assert absent.returncode != 0 and "No steps 1-40" in absent.stderr

    # A registry fix sent alone: it starts no run, so the command says to ask for the rest once the name is fixed.
    listed = incidents.incidents(store, SEASON, now=NOW)
    name = str(listed[listed["kind"] == "NAME_UNRESOLVED"]["incident_id"].iloc[0])
    registry = cli("--incident", name, "--steps", "1")
    assert registry.returncode == 0 and "registry fix starts no run" in registry.stderr, registry.stderr
    # The first two steps only (the re-scrape and phase 3): phase 3 may cascade, nothing goes to phase 4 yet.
    first = cli("--incident", incident, "--steps", "1-2")
    assert first.returncode == 0 and "re-scrape" in first.stdout and "nba-phase4-trigger" not in first.stdout
    early = cli("--incident", incident, "--steps", "1-2", "--send", "--actor", "alice", "--note", "scrape first")
    assert early.returncode == 0, early.stderr
    (p3,) = pipeline.pull("nba-phase3-trigger", expect=1)
    assert "skip_downstream_trigger" not in json.loads(p3.data)  # the pipeline cascades to phase 4 in its order
    assert pipeline.pull("nba-phase4-trigger", expect=0, timeout=3) == []
    # Asked for every step afterwards: phase 3 is pending and left out, phase 4 goes, told not to cascade.
    done = cli("--incident", incident, "--send", "--actor", "alice", "--note", "box score missing")
    assert done.returncode == 0, done.stderr
    later = pipeline.pull("nba-phase4-trigger", expect=1)
    assert later and all(json.loads(m.data)["skip_downstream_trigger"] for m in later)
    assert pipeline.pull("nba-phase3-trigger", expect=0, timeout=3) == []  # pending from the first request
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["sent"] > 0 and summary["failed"] == 0 and summary["request_id"]


@pytest.mark.bigquery
def test_requests_are_kept_and_followed_on_the_bigquery_emulator(emulator: str) -> None:
    from tests import bq

    store = bq.store(emulator)
    store.init_schema()
    rows = [precompute_row(analysis_date=dt.date(2022, 1, d), entity_id=f"p{d}", is_correctable=True,
                           failure_type="DATA_GAP") for d in (3, 4)]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.insert_frame("nba_processing.precompute_failures", frame)
    settings = reruns.RerunSettings.from_mapping({})
    window = Filters(date_from=dt.date(2022, 1, 1), date_to=dt.date(2022, 1, 31))
    plan = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
    assert [m.data_date for m in plan.messages] == [dt.date(2022, 1, 3), dt.date(2022, 1, 4)]
    sent = reruns.send(store, plan, ALICE, note="by hand", settings=settings, now=NOW)
    assert sent.sent == 2
    assert not reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW).messages
    # The operator ran the first date by hand; then its item was settled.
    run = {"processor_name": "PlayerDailyCacheProcessor", "run_id": "manual-1", "status": "success",
           "data_date": dt.date(2022, 1, 3), "started_at": pd.Timestamp(NOW + dt.timedelta(minutes=10)),
           "trigger_source": "manual", "trigger_message_data": json.dumps({"correlation_id": "x"})}  # fmt: skip
    _record_runs(store, [{**run, "processed_at": run["started_at"]}])
    followed = reruns.follow(store, window, settings, now=NOW + dt.timedelta(minutes=20)).set_index("data_date")
    assert followed.loc[dt.date(2022, 1, 3), "state"] == "run seen"
    assert followed.loc[dt.date(2022, 1, 4), "state"] == "pending"
    scope = resolution.Scope(window.with_(entity_exact="p3"))
    resolution.apply(store, scope, "RESOLVED", actor=ALICE, note="re-run", now=NOW + dt.timedelta(minutes=30))
    followed = reruns.follow(store, window, settings, now=NOW + dt.timedelta(hours=7)).set_index("data_date")
    assert followed.loc[dt.date(2022, 1, 3), "state"] == "settled"
    assert followed.loc[dt.date(2022, 1, 4), "state"] == "stale"


@pytest.mark.parametrize("error", [RuntimeError("socket closed"), KeyboardInterrupt()], ids=["crash", "interrupt"])
def test_a_send_stopped_half_way_leaves_nothing_pending(store, error: BaseException) -> None:
    settings = _settings()  # phase 4 goes to Pub/Sub; the publisher below fails on the second message
    window = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 6))
    plan = reruns.plan_processor(store, window, "PlayerDailyCacheProcessor", settings, now=NOW)
    assert len(plan.messages) >= 2
    calls: list[str] = []

    def publish(m: reruns.Message, attributes: dict[str, str], _: reruns.RerunSettings) -> str:
        calls.append(m.key)
        if len(calls) == 2:
            raise error
        return f"id-{len(calls)}"

    if isinstance(error, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            reruns.send(store, plan, ALICE, note="x", settings=settings, now=NOW, publish=publish)
    else:
        sent = reruns.send(store, plan, ALICE, note="x", settings=settings, now=NOW, publish=publish)
        assert sent.sent == 1 and "socket closed" in sent.failed[0]["error"]
    states = reruns.follow(store, window, settings, now=NOW + dt.timedelta(minutes=1))
    assert list(states["state"]) == ["pending"] + ["failed"] * (len(plan.messages) - 1)
    again = reruns.plan_processor(
        store, window, "PlayerDailyCacheProcessor", settings, now=NOW + dt.timedelta(minutes=1)
    )
    assert len(again.messages) == len(plan.messages) - 1  # all but the one sent may be asked again
