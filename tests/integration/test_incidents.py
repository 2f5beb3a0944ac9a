"""Incidents on the classified demo season: the gaps the demo injected are the root causes, each holds only
players who were on that team that day (the demo's rosters, not the classifier), every open correctable item
belongs to one, and restoring a box score settles its incident while the incident keeps the items it explained."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pandas as pd
import pytest

from lib import incidents, resolution
from lib.errors import BadInput
from lib.model import OPEN_STATUSES, Actor, Filters, ItemKey
from lib.store import DuckDBStore
from lib.store import queries as q
from tests import gaps
from tests.conftest import CLASSIFIED_AT, ROOT

SEASON = Filters(date_from=dt.date(2021, 10, 19), date_to=dt.date(2022, 4, 10))
NOW = CLASSIFIED_AT  # when the session's classified demo was judged (tests/conftest.py)


@pytest.fixture(scope="module")
def season_incidents(classified: DuckDBStore) -> pd.DataFrame:
    return incidents.incidents(classified, SEASON, now=NOW)


def _player_entities(items: pd.DataFrame) -> set[str]:
    players = items[items["source_table"] != "analytics_failures"]["entity_id"]
    return {e for e in players if e != "DATE_LEVEL"}


def test_the_injected_box_score_gaps_are_incidents_of_that_team_side(classified, season_incidents, demo_season
                                                                      ) -> None:  # fmt: skip
    by_id = season_incidents.set_index("incident_id")
    sides = [s.split(":") for s in demo_season.injected["side_gaps"]]
    for gid in demo_season.injected["raw_gap_games"]:
        g = gaps.game(demo_season, gid)
        sides += [[gid, g["home_team_tricode"]], [gid, g["away_team_tricode"]]]
    assert len(sides) >= 9
    for gid, team in sides:
        ident = incidents.IncidentId("RAW_DATA_GAP", gid, team)
        assert ident.text in by_id.index, f"no incident for the missing {team} side of {gid}"
        row = by_id.loc[ident.text]
        assert row["open_items"] > 0 and row["kind"] == "RAW_DATA_GAP"
        day = pd.Timestamp(gaps.game(demo_season, gid)["game_date"]).date()
        assert row["game_date"] == day and row["first_date"] >= day  # items after the game, never before
        items = incidents.incident_items(classified, SEASON, ident)
        assert int(items["open_in_incident"].sum()) == row["open_items"] and len(items) == row["items"]
        players = _player_entities(items)
        assert players and players <= gaps.roster(demo_season, team, day), (
            gid,
            team,
            players - gaps.roster(demo_season, team, day),
        )
        assert row["reruns"].startswith("1 re-scrape") and "2 phase 3" in row["reruns"]
    for gid in demo_season.injected["backfilled_games"]:  # the data arrived: nothing of theirs is open
        assert not season_incidents["incident_id"].str.startswith(f"RAW_DATA_GAP:{gid}:").any()
    phase3_gaps = set(season_incidents[season_incidents["kind"] == "ANALYTICS_GAP"]["subject"])
    assert set(demo_season.injected["analytics_gap_games"]) <= phase3_gaps


def test_every_open_correctable_item_is_in_an_incident_counted_once_per_incident(classified) -> None:
    weeks = Filters(date_from=dt.date(2022, 1, 10), date_to=dt.date(2022, 1, 31))
    listed = incidents.incidents(classified, weeks, now=NOW)
    assert {"RAW_DATA_GAP", "ANALYTICS_GAP", "NAME_UNRESOLVED"} <= set(listed["kind"])
    open_keys: set[str] = set()
    memberships = 0
    for ident in listed["incident_id"]:
        items = incidents.incident_items(classified, weeks, incidents.IncidentId.parse(ident))
        row = listed[listed["incident_id"] == ident].iloc[0]
        assert items["key"].is_unique and len(items) == row["items"]
        opened = set(items[items["open_in_incident"]]["key"])
        assert len(opened) == row["open_items"]
        open_keys |= opened
        memberships += len(opened)
    # The failure list's own count of open correctable items: the same items, whatever causes they share.
    correctable = q.count_items(classified, weeks.with_(correctable=("correctable",), statuses=OPEN_STATUSES))
    assert len(open_keys) == correctable
    assert memberships > correctable  # items with two causes are in two incidents
    assert list(listed["open_items"]) == sorted(listed["open_items"], reverse=True)


def test_restoring_a_box_score_settles_its_incident_and_keeps_its_items(classified, demo_season, tmp_path) -> None:
    store = DuckDBStore(tmp_path / "fix.duckdb")
    store.path.write_bytes(classified.path.read_bytes())
    gid, team = demo_season.injected["side_gaps"][0].split(":")
    ident = incidents.IncidentId("RAW_DATA_GAP", gid, team)
    before = incidents.incidents(store, SEASON, now=NOW).set_index("incident_id").loc[ident.text]
    was_open = incidents.incident_items(store, SEASON, ident)
    was_open = set(was_open[was_open["open_in_incident"]]["key"])
    assert before["open_items"] == len(was_open) > 0

    gaps.restore_side(store, demo_season, gid, team)  # the pipeline re-scrapes the side, re-runs phase 3
    resolution.autoresolve(store, actor=Actor("alice"), now=NOW + dt.timedelta(hours=1))

    listed = incidents.incidents(store, SEASON, now=NOW)
    assert ident.text not in set(listed["incident_id"])  # nothing open: off the default list
    every = incidents.incidents(store, SEASON, now=NOW, settled=True).set_index("incident_id")
    after = every.loc[ident.text]
    assert after["state"] == "settled" and after["open_items"] == 0 and after["reruns"] == ""
    assert after["items"] == before["items"] and after["settled_items"] == before["items"]
    items = incidents.incident_items(store, SEASON, ident)
    assert set(items["key"]) >= was_open and not items["open_in_incident"].any()
    # Each item it held is either settled or still open for another cause, never for this one.
    still_open = items[items["status"].isin(OPEN_STATUSES)]
    for key in still_open["key"]:
        got = q.missing_games(store, ItemKey.parse(key))
        assert not ((got["verdict"] == "RAW_DATA_GAP") & (got["game_id"] == gid) & (got["team_abbr"] == team)).any()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "RAW_DATA_GAP",
        "BAD:1:2:",
        "RUN:PDC::",
        "RAW_DATA_GAP:1:2:2022-01-01",
        "RUN:P::not-a-date",
        "RAW_DATA_GAP:::",
        "RAW_DATA_GAP:0022100815::",
        "ANALYTICS_GAP:0022100722:ORL:",
        "NAME_UNRESOLVED::NOP:",
    ],
)
def test_a_bad_incident_id_is_refused_with_its_form(text: str) -> None:
    with pytest.raises(BadInput, match=r"incident id|date"):
        incidents.IncidentId.parse(text)


def test_incident_ids_round_trip_whatever_the_names_hold() -> None:
    for subject, team in (("a:b%3A", "x:y"), ("0022100815", "ORL"), ("jdoe", "")):
        ident = incidents.IncidentId("NAME_UNRESOLVED", subject, team)
        assert incidents.IncidentId.parse(ident.text) == ident
    run = incidents.IncidentId("RUN", "PlayerDailyCacheProcessor", "", dt.date(2022, 3, 6))
    assert incidents.IncidentId.parse(run.text) == run


def test_the_command_line_lists_incidents_and_one_incidents_items(classified) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lib", "incidents", "--db", str(classified.path), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip

    listed = cli("--since", "2022-01-10", "--until", "2022-01-31")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    expected = incidents.incidents(classified, Filters(date_from=dt.date(2022, 1, 10), date_to=dt.date(2022, 1, 31)),
                                   now=NOW)  # fmt: skip
    assert [r["incident_id"] for r in rows] == list(expected["incident_id"])
    assert rows[0]["rerun_steps"] and rows[0]["game_date"] in (None, rows[0]["game_date"][:10])
    one = cli("--incident", rows[0]["incident_id"], "--since", "2022-01-10", "--until", "2022-01-31", "--format", "csv")
    assert one.returncode == 0, one.stderr
    lines = one.stdout.splitlines()
    assert lines[0].startswith("key,") and len(lines) - 1 == rows[0]["items"]
    bad = cli("--incident", "NOPE")
    assert bad.returncode == 2 and "incident id" in bad.stderr and not bad.stdout
