"""Cached query wrappers. Every cache key holds the store's content version (``Store.content_version``: the data
version, less the writes that change no item, such as the operations log's lines and the item index's rebuilds, which
the nightly job makes by the dozen while people read), so new data is seen at once; the operations log's own reads
keep the data version. Writes made through the dashboard also clear the caches (``refresh``)."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import pandas as pd
import streamlit as st

from lib import activity, classification, export, incidents, operations, patterns, players, reruns, settling, workqueue
from lib import briefing as briefing_mod
from lib.model import Choices, DataBounds, Filters, ItemKey, Kpis, Page
from lib.store import Store, index
from lib.store import queries as q
from ui.widgets import processor_short

_TTL = 600
FilterKey = tuple[tuple[str, str], ...]


def _key(filters: Filters) -> FilterKey:
    return tuple(sorted(filters.to_params().items()))


def _filters(key: FilterKey) -> Filters:
    return Filters.from_params(dict(key))


def refresh() -> None:
    st.cache_data.clear()
    with _figures_lock:
        _figures.clear()


#: Charts as built, per the data they show (``figure``). Building a Plotly figure validates every property it is
#: given, which was half of a warm overview (0.1 s of 0.2 s at 10M rows); a kept one is only serialised.
_figures: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_figures_lock = threading.Lock()
FIGURES_KEPT = 64


def figure(store: Store, filters: Filters, name: str, build: Callable[[], Any], *extra: object) -> Any:
    """The chart ``name`` for these filters, built by ``build`` from cached results once per data version (and
    ``extra``: whatever else the chart shows, such as the minute an age is counted at). Never changed once built:
    ``st.plotly_chart`` serialises a copy."""
    key = (name, store.location, store.content_version(), _key(filters), *extra)
    with _figures_lock:
        kept = _figures.get(key)
        if kept is not None:
            _figures.move_to_end(key)
            return kept
    built = build()
    with _figures_lock:
        _figures[key] = built
        while len(_figures) > FIGURES_KEPT:
            _figures.popitem(last=False)
    return built


def prepare(store: Store, filters: Filters) -> None:
    """Before a page reads: bring the item index up to date for the view's dates (lib/store/index.py). Nothing
    to do when no data changed; a rebuild of more than a few weeks (the index's first use, a long rerun) shows
    its progress. A store whose index cannot be kept is read from the failure rows, and the sidebar says so."""
    box = st.empty()
    bars: list[Any] = []

    def progress(fraction: float, message: str) -> None:
        if not bars:
            with box.container(border=True):
                st.markdown(":material/database: **Building the item index for this date range**")
                st.caption(
                    "Items are collapsed from the failure rows once and kept up to date from then on, date by date, "
                    "so that every page reads them at once. This happens on first use, after an upgrade that "
                    "changes the index, and after a rerun of many dates; the page follows when it is done."
                )
                bars.append(st.progress(0.0, text=message))
        bars[0].progress(min(max(fraction, 0.0), 1.0), text=message)

    result = index.ensure(store, filters.date_from, filters.date_to, progress=progress)
    box.empty()
    if not result.usable:
        st.sidebar.caption(f":material/info: Items are computed from the failure rows ({result.reason}): slower.")


@st.cache_data(ttl=_TTL, show_spinner=False)
def _bounds(_store: Store, location: str, version: str) -> DataBounds:
    return q.bounds(_store)


@st.cache_data(ttl=_TTL, show_spinner=False)
def _choices(_store: Store, location: str, version: str, key: FilterKey) -> Choices:
    return q.choices(_store, _filters(key))


@st.cache_data(ttl=_TTL, show_spinner=False)
def _summary(_store: Store, location: str, version: str, key: FilterKey) -> pd.DataFrame:
    return q.summary(_store, _filters(key))


@st.cache_data(ttl=_TTL, show_spinner=False)
def _count(_store: Store, location: str, version: str, key: FilterKey) -> int:
    return q.count_items(_store, _filters(key))


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=64)
def _page(
    _store: Store, location: str, version: str, key: FilterKey, number: int, size: int, sort: str
) -> pd.DataFrame:
    return said(q.with_pipeline_verdicts(_store, q.list_items(_store, _filters(key), Page(number, size, sort))))


def said(frame: pd.DataFrame) -> pd.DataFrame:
    """``pipeline_said``: what the pipeline's classifier had said, in a word beside our verdict."""

    def word(row: pd.Series) -> str:
        if not row["judged"]:
            return "not judged yet (its own)"
        if pd.isna(row["pipeline_type"]) or row["pipeline_type"] is None:
            return "no verdict"
        if not row["disagrees"]:
            return "the same"
        fixable = row["pipeline_correctable"]
        kind = "" if pd.isna(fixable) else (", correctable" if fixable else ", permanent")
        return f"≠ {row['pipeline_type']}{kind}"

    out = frame.copy()
    out["pipeline_said"] = [word(r) for _, r in frame.iterrows()] if len(frame) else pd.Series(dtype="string")
    out["processor_short"] = [processor_short(p) for p in frame["processor_name"]] if len(frame) else pd.Series(
        dtype="string")  # fmt: skip
    return out


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=64)
def _judgement(_store: Store, location: str, version: str, key_text: str) -> pd.Series | None:
    item = _item(_store, location, version, key_text)  # the panel's item, cached: not read again
    if item is None:
        return None
    return said(q.with_pipeline_verdicts(_store, item.to_frame().T.reset_index(drop=True))).iloc[0]


def judgement(store: Store, key: ItemKey) -> pd.Series | None:
    """The item with ``judged``, ``pipeline_type``, ``pipeline_correctable``, ``disagrees`` and ``pipeline_said``."""
    return _judgement(store, store.location, store.content_version(), key.text)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _disagreement(_store: Store, location: str, version: str, key: FilterKey) -> pd.DataFrame:
    return q.disagreement(_store, _filters(key))


def disagreement(store: Store, filters: Filters) -> pd.DataFrame:
    return _disagreement(store, store.location, store.content_version(), _key(filters))


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=64)
def _item(_store: Store, location: str, version: str, key_text: str) -> pd.Series | None:
    return q.get_item(_store, ItemKey.parse(key_text))


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=64)
def _missing_games(_store: Store, location: str, version: str, key_text: str) -> pd.DataFrame:
    return q.missing_games(_store, ItemKey.parse(key_text))


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=8)
def _operations(_store: Store, location: str, version: str) -> pd.DataFrame:
    return operations.recent(_store)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _briefing(
    _store: Store, location: str, version: str, key: FilterKey, since: dt.datetime, now: dt.datetime
) -> briefing_mod.Briefing:
    return briefing_mod.brief(_store, _filters(key), now=now, since=since)


def briefing(store: Store, filters: Filters, *, since: dt.datetime, now: dt.datetime) -> briefing_mod.Briefing:
    """What changed from ``since`` to ``now`` (minutes: the cache serves a page's reruns within a minute)."""
    return _briefing(store, store.location, store.content_version(), _key(filters), since, now)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _settling(_store: Store, location: str, version: str, key: FilterKey, now: dt.datetime) -> settling.Settling:
    return settling.settling(_store, _filters(key), now=now)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _incidents(_store: Store, location: str, version: str, key: FilterKey, now: dt.datetime, settled: bool
               ) -> pd.DataFrame:  # fmt: skip
    return incidents.incidents(_store, _filters(key), now=now, settled=settled)


def _hour(now: dt.datetime) -> dt.datetime:
    """The incident list's clock: ages are shown in days, so the list is computed again once an hour (or when the
    data changes), not every minute."""
    return now.replace(minute=0, second=0, microsecond=0)


def incident_list(store: Store, filters: Filters, *, now: dt.datetime, settled: bool = False) -> pd.DataFrame:
    """The incidents behind the view's items, most open items first (lib/incidents.py)."""
    return _incidents(store, store.location, store.content_version(), _key(filters), _hour(now), settled)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _incident_board(_store: Store, location: str, version: str, key: FilterKey, now: dt.datetime, settled: bool
                    ) -> pd.DataFrame:  # fmt: skip
    every = _incidents(_store, location, version, key, _hour(now), settled)
    every_date = _key(_filters(key).with_(date_from=None, date_to=None))
    asked = _rerun_requests(_store, location, version, every_date, now).dropna(subset=["incident_id"])
    latest: dict[str, str] = {}
    for incident_id, state in zip(asked["incident_id"], asked["state"], strict=True):  # newest first
        latest.setdefault(str(incident_id), str(state))
    return every.assign(
        request=[latest.get(i, "") for i in every["incident_id"]],
        dates=[f"{a:%b %d}–{b:%b %d}" if a != b else f"{a:%b %d}"
               for a, b in zip(every["first_date"], every["last_date"], strict=True)],
        age=[None if pd.isna(d) else int(d) for d in every["age_days"]],
    )  # fmt: skip


def incident_board(store: Store, filters: Filters, *, now: dt.datetime, settled: bool = False) -> pd.DataFrame:
    """The incident list as the page shows it: with each incident's latest re-run request state (``request``),
    its item dates in words and its age in days."""
    return _incident_board(store, store.location, store.content_version(), _key(filters), now, settled)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _incident_items(_store: Store, location: str, version: str, key: FilterKey, incident: str) -> pd.DataFrame:
    frame = incidents.incident_items(_store, _filters(key), incidents.IncidentId.parse(incident))
    return said(q.with_pipeline_verdicts(_store, frame)) if len(frame) else frame


def incident_items(store: Store, filters: Filters, incident: incidents.IncidentId) -> pd.DataFrame:
    """One incident's items with ``open_in_incident`` and the pipeline's verdict beside ours."""
    return _incident_items(store, store.location, store.content_version(), _key(filters), incident.text)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _rerun_messages(_store: Store, location: str, version: str, key: FilterKey, now: dt.datetime,
                    incident_id: str | None) -> pd.DataFrame:  # fmt: skip
    from ui.rerun import settings

    return reruns.follow(_store, _filters(key), settings(), now=now, incident_id=incident_id)


def rerun_messages(store: Store, filters: Filters, *, now: dt.datetime, incident_id: str | None = None
                   ) -> pd.DataFrame:  # fmt: skip
    """Re-run requests' messages with their states (lib/reruns.py): the filters' dates, or one incident's."""
    return _rerun_messages(store, store.location, store.content_version(), _key(filters), now, incident_id)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _rerun_requests(_store: Store, location: str, version: str, key: FilterKey, now: dt.datetime) -> pd.DataFrame:
    return reruns.requests(_rerun_messages(_store, location, version, key, now, None))


def rerun_requests(store: Store, filters: Filters, *, now: dt.datetime) -> pd.DataFrame:
    """The re-run requests of the filters' dates, one row per request with its state, newest first."""
    return _rerun_requests(store, store.location, store.content_version(), _key(filters), now)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=64)
def _item_requests(_store: Store, location: str, version: str, key_text: str) -> pd.DataFrame:
    return reruns.item_requests(_store, ItemKey.parse(key_text))


def item_requests(store: Store, key: ItemKey) -> pd.DataFrame:
    """The re-run messages asked for one item, newest first."""
    return _item_requests(store, store.location, store.content_version(), key.text)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _backlog(_store: Store, location: str, version: str, key: FilterKey, now: dt.datetime) -> pd.DataFrame:
    return settling.backlog_age(_store, _filters(key), now=now)


def backlog_age(store: Store, filters: Filters, *, now: dt.datetime) -> pd.DataFrame:
    """Open items per age bucket: the overview's glance at the backlog (the Settling page has the rest)."""
    return _backlog(store, store.location, store.content_version(), _key(filters), now)


def settling_metrics(store: Store, filters: Filters, *, now: dt.datetime) -> settling.Settling:
    """Backlog age, oldest open items, time to settle, auto-resolved share and regressions (lib/settling.py)."""
    return _settling(store, store.location, store.content_version(), _key(filters), now)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=8)
def _last_nightly(_store: Store, location: str, version: str) -> pd.Series | None:
    return operations.latest(_store, "nightly")


def last_nightly(store: Store) -> pd.Series | None:
    """The nightly job's latest run (lib/nightly.py), from the operations log."""
    return _last_nightly(store, store.location, store.data_version())


def recent_operations(store: Store) -> pd.DataFrame:
    """The operations log: classifications, auto-resolves, syncs, demo writes (newest first)."""
    return _operations(store, store.location, store.data_version())


def missing_games(store: Store, key: ItemKey) -> pd.DataFrame:
    return _missing_games(store, store.location, store.content_version(), key.text)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=64)
def _history(_store: Store, location: str, version: str, key_text: str) -> pd.DataFrame:
    return activity.history(_store, ItemKey.parse(key_text))


def history(store: Store, key: ItemKey) -> pd.DataFrame:
    return _history(store, store.location, store.content_version(), key.text)


def item(store: Store, key: ItemKey) -> pd.Series | None:
    return _item(store, store.location, store.content_version(), key.text)


def bounds(store: Store) -> DataBounds:
    return _bounds(store, store.location, store.content_version())


def choices(store: Store, filters: Filters) -> Choices:
    return _choices(store, store.location, store.content_version(), _key(filters))


_FROM_CUBE: dict[str, Callable[[pd.DataFrame, bool], Any]] = {
    "kpis": q.kpis_of, "matrix": q.matrix_of, "trend": q.trend_of,
    "mass_dates": patterns.mass_dates_of, "permanent_share": patterns.permanent_share_of,
}  # fmt: skip


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=96)
def _of_cube(_store: Store, location: str, version: str, key: FilterKey, what: str, hide_expected: bool) -> Any:
    # The toggle only chooses rows of the cube: one cached query serves both of its positions. What each chart
    # needs is cached too: a warm run then reads three small results, not the whole history's cube three times
    # (unpickling it grew with the rows: 0.52 s of a warm whole-history overview at 10M rows).
    return _FROM_CUBE[what](_summary(_store, location, version, key), hide_expected)


def _from_cube(store: Store, filters: Filters, what: str) -> Any:
    key = _key(filters.with_(hide_expected=False))
    return _of_cube(store, store.location, store.content_version(), key, what, filters.hide_expected)


def kpis(store: Store, filters: Filters) -> Kpis:
    return cast(Kpis, _from_cube(store, filters, "kpis"))


def matrix(store: Store, filters: Filters) -> pd.DataFrame:
    return cast(pd.DataFrame, _from_cube(store, filters, "matrix"))


def trend(store: Store, filters: Filters) -> pd.DataFrame:
    return cast(pd.DataFrame, _from_cube(store, filters, "trend"))


def count(store: Store, filters: Filters) -> int:
    return _count(store, store.location, store.content_version(), _key(filters))


def page(store: Store, filters: Filters, p: Page) -> pd.DataFrame:
    return _page(store, store.location, store.content_version(), _key(filters), p.number, p.size, p.sort)


EXPORT_COLUMNS = (
    "key",
    "source_table",
    "processor_name",
    "item_date",
    "entity_id",
    "entity_type",
    "status",
    "failure_category",
    "failure_type",
    "is_correctable",
    "occurrences",
    "runs",
    "first_seen",
    "last_seen",
    "latest_run_id",
    "can_retry",
    "expected_count",
    "actual_count",
    "missing_json",
    "raw_data_checked",
    "failure_reason",
)


def csv_bytes(frames: Iterable[pd.DataFrame], columns: Sequence[str]) -> bytes:
    """One spreadsheet-safe CSV from frames that arrive one by one (``lib.export``)."""
    out = io.StringIO()
    export.write_csv(frames, columns, out)
    return out.getvalue().encode("utf-8")


def csv_export(store: Store, filters: Filters, sort: str) -> Callable[[], bytes]:
    """A deferred CSV of every item matching the filter, streamed from the engine."""

    def build() -> bytes:
        return csv_bytes((export.readable_items(f) for f in q.iter_items(store, filters, sort=sort)), EXPORT_COLUMNS)

    return build


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _player_season(
    _store: Store, location: str, version: str, lookup: str, start: dt.date, end: dt.date
) -> pd.DataFrame:
    rows = [
        {
            "game_date": g.game_date,
            "game_id": g.game_id,
            "team": team,
            "opponent": g.home if team == g.away else g.away,
            "outcome": outcome,
            "reason": reason,
        }
        for g, team, outcome, reason in classification.player_season(_store, lookup, start, end)
    ]
    return pd.DataFrame(rows, columns=["game_date", "game_id", "team", "opponent", "outcome", "reason"])


def player_season(store: Store, lookup: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    return _player_season(store, store.location, store.pipeline_version(), lookup, start, end)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _player_items(_store: Store, location: str, version: str, lookup: str, key: FilterKey) -> pd.DataFrame:
    return players.items(_store, lookup, _filters(key))


def player_items(store: Store, lookup: str, filters: Filters) -> pd.DataFrame:
    return _player_items(store, store.location, store.content_version(), lookup, _key(filters))


def mass_dates(store: Store, filters: Filters) -> pd.DataFrame:
    return cast(pd.DataFrame, _from_cube(store, filters, "mass_dates"))


def permanent_share(store: Store, filters: Filters) -> pd.DataFrame:
    return cast(pd.DataFrame, _from_cube(store, filters, "permanent_share"))


#: Page queries that take (store, filters), cached like every other read (key: data version + filters).
_VIEWS: dict[str, Callable[[Store, Filters], Any]] = {
    "streaks": patterns.streaks,
    "reasons": patterns.reasons_by_week,
    "team_dates": patterns.team_dates,
    "rescrape": lambda s, f: workqueue.games_to_fix(s, f, "RAW_DATA_GAP"),
    "reprocess": lambda s, f: workqueue.games_to_fix(s, f, "ANALYTICS_GAP"),
    "names": workqueue.names_to_fix,
    "reruns": workqueue.reruns,
    "plan": workqueue.plan,
    "open_correctable": lambda s, f: workqueue.counts(s, f)["open correctable items"],
}


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=128)
def _view(_store: Store, location: str, version: str, name: str, key: FilterKey) -> Any:
    return _VIEWS[name](_store, _filters(key))


def view(store: Store, name: str, filters: Filters) -> Any:
    """One of the patterns / work-queue reads, cached until the data changes."""
    return _view(store, store.location, store.content_version(), name, _key(filters))


# -- the remaining reads: the audit trail, the classifier's backlog, player search, a heat-map cell -----------------


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=8)
def _actors(_store: Store, location: str, version: str) -> list[str]:
    return activity.actors(_store)


def actors(store: Store) -> list[str]:
    """Everyone who ever changed a status."""
    return _actors(store, store.location, store.content_version())


def _activity_key(af: activity.ActivityFilters) -> tuple[Any, ...]:
    return (af.item_from, af.item_to, af.actors, af.to_statuses, af.text)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _activity_count(_store: Store, location: str, version: str, key: tuple[Any, ...]) -> int:
    return activity.activity_count(_store, activity.ActivityFilters(*key))


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _activity_page(_store: Store, location: str, version: str, key: tuple[Any, ...], limit: int,
                   offset: int) -> pd.DataFrame:  # fmt: skip
    return activity.activity(_store, activity.ActivityFilters(*key), limit=limit, offset=offset)


def activity_count(store: Store, af: activity.ActivityFilters) -> int:
    return _activity_count(store, store.location, store.content_version(), _activity_key(af))


def activity_page(store: Store, af: activity.ActivityFilters, *, limit: int, offset: int) -> pd.DataFrame:
    """One page of the audit trail, newest first."""
    return _activity_page(store, store.location, store.content_version(), _activity_key(af), limit, offset)


def activity_export(store: Store, af: activity.ActivityFilters, columns: Sequence[str]) -> bytes:
    """The whole matching trail as spreadsheet-safe CSV, streamed from the engine when asked for."""
    return csv_bytes(activity.iter_activity(store, af), columns)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=16)
def _to_classify(_store: Store, location: str, version: str, key: FilterKey, everything: bool) -> int:
    f = _filters(key)
    return classification.count_to_classify(_store, include_classified=everything, since=f.date_from, until=f.date_to)


def to_classify(store: Store, filters: Filters, *, everything: bool = False) -> int:
    """Items of the view's dates without a verdict (or every item, ``everything``): the classifier's backlog."""
    scope = Filters(date_from=filters.date_from, date_to=filters.date_to)
    return _to_classify(store, store.location, store.content_version(), _key(scope), everything)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _player_search(_store: Store, location: str, version: str, text: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    return players.search(_store, text, start, end)


def player_search(store: Store, text: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    return _player_search(store, store.location, store.content_version(), text, start, end)


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=32)
def _cell_keys(_store: Store, location: str, version: str, key: FilterKey, team: str, day: dt.date) -> list[ItemKey]:
    return patterns.team_date_keys(_store, _filters(key), team, day)


def cell_keys(store: Store, filters: Filters, team: str, day: dt.date) -> list[ItemKey]:
    """The open did-not-play items of one team on one date (a heat-map cell)."""
    return _cell_keys(store, store.location, store.content_version(), _key(filters), team, day)
