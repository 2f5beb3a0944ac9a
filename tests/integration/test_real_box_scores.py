"""The classifier on real 2019-20 box scores with injected gaps (truth known by construction)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lib import classification
from lib.model import GameVerdict
from lib.store import DuckDBStore
from tests import realdata

NOW = dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def world() -> realdata.RealWorld:
    return realdata.build(realdata.FIXTURE, teams={"GSW", "BKN", "LAL", "NOP"})


def test_the_fixture_holds_every_kind_of_missing_game(world: realdata.RealWorld) -> None:
    kinds = {v for games in world.truth_games.values() for v in games.values()}
    assert kinds == {GameVerdict.PLAYER_DNP, GameVerdict.NOT_IN_BOXSCORE, GameVerdict.RAW_DATA_GAP,
                     GameVerdict.ANALYTICS_GAP, GameVerdict.NAME_UNRESOLVED}  # fmt: skip
    assert len(world.failures) > 800
    assert world.failures["missing_game_dates"].notna().sum() > 100  # some rows carry explicit dates


def test_the_classifier_reaches_the_accuracy_the_team_needs(world: realdata.RealWorld, tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "real.duckdb")
    realdata.write(store, world)
    report = classification.run(store, now=NOW)
    assert report.items == len(world.failures)
    accuracy = realdata.measure(store, world)
    print(
        f"\nreal box scores: per game {accuracy.per_game:.4%} ({accuracy.games_right}/{accuracy.games}), "
        f"per failure {accuracy.per_failure:.4%} ({accuracy.failures_right}/{accuracy.failures}); "
        f"confusion {accuracy.confusion}"
    )
    assert accuracy.per_game >= 0.995
    assert accuracy.per_failure >= 0.99
    # No correctable game may pass for a permanent one wholesale: every kind is found.
    assert {"RAW_DATA_GAP", "ANALYTICS_GAP", "NAME_UNRESOLVED"} <= set(report.by_verdict)


def test_the_pipelines_own_rule_would_fail_on_the_same_data(world: realdata.RealWorld) -> None:
    """'Absent from raw means did not play; present means complete', the old classifier, scored by the oracle."""
    listed = set(zip(world.gamebook["player_lookup"], world.gamebook["game_date"], strict=True))
    right = total = 0
    for (player, _day), games in world.truth_games.items():
        for game_date, truth in games.items():
            total += 1
            old = "COMPLETE" if (player, game_date) in listed else "PLAYER_DNP"
            right += (old == "PLAYER_DNP") == (truth.is_correctable is False)
    assert right / total < 0.9  # far below what the classifier reaches on the very same games
