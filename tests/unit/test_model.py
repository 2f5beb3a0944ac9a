import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.model import DataBounds, Filters, ItemKey, Page


def test_an_item_key_round_trips_through_its_text_form() -> None:
    key = ItemKey("precompute_failures", "PlayerDailyCacheProcessor", dt.date(2021, 12, 31), "zachlavine")
    assert key.text == "precompute_failures:PlayerDailyCacheProcessor:2021-12-31:zachlavine"
    assert ItemKey.parse(key.text) == key


def test_an_item_key_keeps_colons_inside_the_entity() -> None:
    key = ItemKey.parse("analytics_failures:PlayerGameSummaryProcessor:2022-01-02:weird:entity:id")
    assert key.entity_id == "weird:entity:id"


@settings(max_examples=500, derandomize=True, database=None)
@given(processor=st.text(), entity=st.text(), day=st.dates())
def test_an_item_key_is_reversible_for_any_processor_and_entity(processor: str, entity: str, day: dt.date) -> None:
    key = ItemKey("analytics_failures", processor, day, entity)
    assert ItemKey.parse(key.text) == key


@pytest.mark.parametrize(
    "text, message",
    [
        ("nonsense", "Not an item key"),
        ("other_table:P:2021-12-31:x", "Unknown failure table"),
        ("precompute_failures:P:2021-13-45:x", "Bad date"),
        ("precompute_failures:P:2021-12-31", "Not an item key"),
    ],
)
def test_a_malformed_item_key_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ItemKey.parse(text)


def test_filters_round_trip_through_url_parameters() -> None:
    f = Filters(
        date_from=dt.date(2021, 11, 1),
        date_to=dt.date(2021, 12, 31),
        tables=("precompute_failures",),
        processors=("PlayerDailyCacheProcessor", "MLFeatureStoreProcessor"),
        categories=("calculation_error",),
        failure_types=("PLAYER_DNP", "UNCLASSIFIED"),
        correctable=("uncorrectable",),
        statuses=("UNRESOLVED",),
        entity="lavine",
        hide_expected=False,
    )
    assert Filters.from_params(f.to_params()) == f
    assert Filters.from_params(Filters().to_params()) == Filters()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"date_from": "31/12/2021"}, "not a YYYY-MM-DD date"),
        ({"tables": "users"}, "Unknown failure table"),
        ({"statuses": "DONE"}, "Unknown resolution status"),
        ({"correctable": "maybe"}, "Unknown correctable"),
        ({"date_from": "2022-01-02", "date_to": "2022-01-01"}, "Date range is empty"),
    ],
)
def test_bad_filter_parameters_are_named_in_the_error(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Filters.from_params(params)


def test_a_huge_entity_search_is_cut_to_a_usable_length() -> None:
    assert len(Filters.from_params({"entity": "x" * 100_000}).entity) == 200


def test_page_rejects_unknown_sorts_and_absurd_sizes() -> None:
    with pytest.raises(ValueError, match="Unknown sort"):
        Page(sort="random()")
    with pytest.raises(ValueError):
        Page(size=10_000)
    with pytest.raises(ValueError):
        Page(number=0)


def test_the_default_range_is_the_latest_thirty_days_that_have_data() -> None:
    b = DataBounds(dt.date(2021, 10, 19), dt.date(2022, 4, 10), 100)
    assert b.default_range() == (dt.date(2022, 3, 12), dt.date(2022, 4, 10))
    short = DataBounds(dt.date(2022, 4, 1), dt.date(2022, 4, 10), 5)
    assert short.default_range() == (dt.date(2022, 4, 1), dt.date(2022, 4, 10))
    assert DataBounds(None, None, 0).default_range() is None


def test_processor_windows_come_from_the_environment_or_the_secrets_file() -> None:
    from lib.config import Settings, window_settings_text

    settings = Settings.from_env({"TRIAGE_WINDOWS": "PlayerDailyCacheProcessor=5g,10g,7d,14d; default=7d;"})
    config = settings.classifier_config()
    assert [w.spec for w in config.windows("PlayerDailyCacheProcessor")] == ["5g", "10g", "7d", "14d"]
    assert [w.spec for w in config.windows("PlayerShotZoneAnalysisProcessor")] == ["7d"]
    assert [w.spec for w in Settings.from_env({}).classifier_config().windows("Anything")] == ["14d"]
    text = window_settings_text({"PlayerShotZoneAnalysisProcessor": ["10g"], "default": "14 days"})
    again = Settings.from_env({"TRIAGE_WINDOWS": text}).classifier_config()
    assert again.window_label("PlayerShotZoneAnalysisProcessor") == "last 10 games"
    assert again.window_label("TeamDefenseZoneAnalysisProcessor") == "last 14 days"


def test_unreadable_window_settings_name_the_setting() -> None:
    import pytest

    from lib.config import Settings

    for text in ("PlayerDailyCacheProcessor", "=5g", "PlayerDailyCacheProcessor=5x", "default=0d"):
        with pytest.raises(ValueError, match="TRIAGE_WINDOWS"):
            Settings.from_env({"TRIAGE_WINDOWS": text})
