"""The classifier on real 2019-20 box scores with injected gaps (truth known by construction).

The truth is what the pipeline counted (its completeness check: the player's team as of the analysis
date, that team's games in each processor's window) and what really happened in the box score, never the
classifier's own rules. Two slices: the whole history, and a history cut to start mid-season (the first
weeks of an evidence history, players out injured whose first row comes late, signings). The committed
fixture (four teams, November and December) always runs; the whole 2019-20 season runs where
``../shared/data`` is present, as it is in CI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lib import classification
from lib.access import SYSTEM
from lib.model import GameVerdict
from lib.store import DuckDBStore
from tests import realdata

NOW = dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC)
FIXTURE_TEAMS = {"GSW", "BKN", "LAL", "NOP"}
TARGET = 0.998  # per missing game and per failure type


@pytest.fixture(scope="module")
def world() -> realdata.RealWorld:
    return realdata.build(realdata.FIXTURE, teams=FIXTURE_TEAMS)


def _classified(world: realdata.RealWorld, path: Path) -> tuple[realdata.Accuracy, classification.Report]:
    store = DuckDBStore(path)
    realdata.write(store, world)
    report = classification.run(store, actor=SYSTEM, now=NOW, config=realdata.classifier_config())
    assert report.items == len(world.failures)
    return realdata.measure(store, world), report


def test_the_fixture_holds_every_kind_of_missing_game(world: realdata.RealWorld) -> None:
    kinds = {v for games in world.truth_games.values() for v in games.values()}
    assert kinds == {GameVerdict.PLAYER_DNP, GameVerdict.NOT_IN_BOXSCORE, GameVerdict.RAW_DATA_GAP,
                     GameVerdict.ANALYTICS_GAP, GameVerdict.NAME_UNRESOLVED}  # fmt: skip
    assert len(world.failures) > 800
    assert world.failures["missing_game_dates"].notna().sum() > 100  # some rows carry explicit dates
    assert set(world.failures["processor_name"]) == set(realdata.PROCESSORS)  # day and game-count windows


def test_the_classifier_reaches_the_accuracy_the_team_needs(world: realdata.RealWorld, tmp_path: Path) -> None:
    accuracy, report = _classified(world, tmp_path / "real.duckdb")
    print("\n" + accuracy.report("real box scores, Nov-Dec 2019"))
    assert accuracy.per_game >= TARGET
    assert accuracy.per_failure >= TARGET
    # No correctable game may pass for a permanent one wholesale: every kind is found.
    assert {"RAW_DATA_GAP", "ANALYTICS_GAP", "NAME_UNRESOLVED"} <= set(report.by_verdict)
    assert "UNDECIDED" not in report.by_verdict and "UNKNOWN" not in report.by_type


def test_an_evidence_history_that_starts_mid_season_is_classified_as_well(tmp_path: Path) -> None:
    """Everything starts on Dec 1: players out since November have no row until they return."""
    cut = realdata.build(realdata.FIXTURE, teams=FIXTURE_TEAMS, history_from=dt.date(2019, 12, 1))
    assert len(cut.failures) > 500
    accuracy, report = _classified(cut, tmp_path / "cut.duckdb")
    print("\n" + accuracy.report("real box scores from Dec 1, 2019"))
    assert accuracy.per_game >= TARGET and accuracy.per_failure >= TARGET
    assert "UNDECIDED" not in report.by_verdict and "UNKNOWN" not in report.by_type
    # The cases the old rule could not place: games of his team before his first row in the history.
    assert report.by_verdict["NOT_IN_BOXSCORE"] > 100


@pytest.mark.skipif(not realdata.SHARED.exists(), reason="the whole 2019-20 season lives in ../shared/data")
@pytest.mark.parametrize("history_from", [None, dt.date(2020, 1, 1)], ids=["whole season", "from January 1"])
def test_the_whole_season_reaches_the_accuracy_the_team_needs(history_from: dt.date | None, tmp_path: Path) -> None:
    season = realdata.build(realdata.SHARED, gaps=30, history_from=history_from)
    accuracy, _ = _classified(season, tmp_path / "season.duckdb")
    print("\n" + accuracy.report(f"real box scores 2019-20, history from {history_from or 'the start'}"))
    assert accuracy.per_game >= TARGET and accuracy.per_failure >= TARGET


def test_the_pipelines_own_rule_would_fail_on_the_same_data(world: realdata.RealWorld) -> None:
    """'Absent from raw means did not play; present means complete', the old classifier, scored by the oracle."""
    listed = set(zip(world.gamebook["player_lookup"], world.gamebook["game_date"], strict=True))
    right = total = 0
    for (_processor, player, _day), games in world.truth_games.items():
        for game_date, truth in games.items():
            total += 1
            old = "COMPLETE" if (player, game_date) in listed else "PLAYER_DNP"
            right += (old == "PLAYER_DNP") == (truth.is_correctable is False)
    assert right / total < 0.9  # far below what the classifier reaches on the very same games


@pytest.mark.parametrize("history_from", [None, dt.date(2019, 12, 1)], ids=["Nov-Dec", "from Dec 1"])
def test_the_engine_and_the_oracle_agree_on_real_box_scores(history_from: dt.date | None, tmp_path: Path) -> None:
    """The engine's verdicts are the oracle's, row for row, on real data too (not only on random worlds)."""
    world = realdata.build(realdata.FIXTURE, teams=FIXTURE_TEAMS, history_from=history_from)
    verdicts = {}
    for method in ("oracle", "engine"):
        store = DuckDBStore(tmp_path / f"{method}.duckdb")
        realdata.write(store, world)
        classification.run(store, actor=SYSTEM, now=NOW, config=realdata.classifier_config(), method=method)
        wide = {"a": dt.date(1900, 1, 1), "b": dt.date(2999, 1, 1)}
        rows = store.query(
            "SELECT processor_name, analysis_date, entity_id, failure_type, is_correctable, expected_game_count, "
            "actual_game_count, missing_game_dates FROM nba_processing.precompute_failures "
            "WHERE analysis_date BETWEEN @a AND @b ORDER BY 1, 2, 3", wide)  # fmt: skip
        games = store.query(
            "SELECT processor_name, analysis_date, entity_id, game_date, game_id, team_abbr, verdict, dnp_reason "
            "FROM nba_processing.failure_missing_games WHERE analysis_date BETWEEN @a AND @b "
            "ORDER BY 1, 2, 3, 4, 5, 6", wide)  # fmt: skip
        verdicts[method] = (rows.astype(str).values.tolist(), games.astype(str).values.tolist())
    assert len(verdicts["engine"][0]) == len(world.failures)
    assert verdicts["engine"] == verdicts["oracle"]
