"""The reads behind the pages: items (lib/store/relation.py) counted, grouped or listed.

Reads come from the item index and its daily rollups (lib/store/index.py), brought up to date for the dates
in range first; where the index cannot be kept (a read-only store without it) they compute the items from the
failure rows, with the same relation. All SQL is BigQuery Standard SQL built only from fixed fragments; every
value a person chose travels as a named parameter. Every statement on a failure table or the index filters
its partition column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd

from lib.model import (
    EARLIEST,
    EXPECTED_CATEGORIES,
    LATEST,
    UNCLASSIFIED,
    Choices,
    DataBounds,
    Filters,
    ItemKey,
    Kpis,
    Page,
    encode_key_part,
)
from lib.store import index
from lib.store.base import Store
from lib.store.history import change_condition, history_ctes
from lib.store.relation import (
    active_dates_cte,
    compared_sql,
    differs_sql,
    indexed_cte,
    items_cte,
    judged_cte,
    judged_sql,
    rows_cte,
)

_ITEM_FILTERS = {
    "categories": "failure_category IN UNNEST(@categories)",
    "failure_types": "failure_type_label IN UNNEST(@failure_types)",
    "correctable": "correctable_class IN UNNEST(@correctable)",
    "statuses": "status IN UNNEST(@statuses)",
    "disagree": f"""EXISTS (
    SELECT 1 FROM nba_processing.item_judgements AS jd
    WHERE jd.item_date = labelled.item_date AND jd.source_table = labelled.source_table
      AND jd.processor_name = labelled.processor_name AND jd.entity_id = labelled.entity_id
      AND {differs_sql("jd", "jd.at", "labelled")})""",
}

_SORTS = {
    "newest date": "item_date DESC, source_table, processor_name, entity_id",
    "oldest date": "item_date, source_table, processor_name, entity_id",
    "most occurrences": "occurrences DESC, item_date DESC, source_table, processor_name, entity_id",
    "last seen": "last_seen DESC, source_table, processor_name, item_date, entity_id",
    "processor": "processor_name, item_date DESC, source_table, entity_id",
    "entity": "entity_id, item_date DESC, source_table, processor_name",
}

ITEM_COLUMNS = (
    "source_table, phase, processor_name, item_date, entity_id, entity_type, occurrences, runs, "
    "first_seen, last_seen, latest_run_id, failure_category, failure_reason, can_retry, "
    "failure_type_label AS failure_type, is_correctable, correctable_class, expected_count, actual_count, "
    "missing_json, raw_data_checked, status, status_at, events, recurred, resolved_at, is_expected"
)


def _params(filters: Filters) -> dict[str, Any]:
    changed = {"changed_since": filters.changed_since} if filters.changed else {}
    return changed | {
        "date_from": filters.date_from or EARLIEST,
        "date_to": filters.date_to or LATEST,
        "tables": list(filters.tables),
        "processors": list(filters.processors),
        "entity": filters.entity.strip(),
        "entity_exact": filters.entity_exact or "",
        "categories": list(filters.categories),
        "failure_types": list(filters.failure_types),
        "correctable": list(filters.correctable),
        "statuses": list(filters.statuses),
        "expected_categories": list(EXPECTED_CATEGORIES),
        "unclassified": UNCLASSIFIED,
    }


def indexed(store: Store, filters: Filters) -> bool:
    """Bring the item index up to date for the filters' dates; True when the reads may use it."""
    return index.ensure(store, filters.date_from, filters.date_to).usable


def _base(
    filters: Filters, *, detail: bool, indexed: bool, rows: bool, since: str = "", judgements: bool = False
) -> str:
    """``WITH ... labelled AS (...)``: from the index (with ``failure_rows`` too when ``rows``), or computed. With
    ``since`` (a timestamp parameter; from the index only), the rows and items of the dates where something may
    have changed after it (``active_dates``): what a history since then needs, and nothing more."""
    if indexed and since:
        return (
            "WITH "
            + active_dates_cte(since)
            + ","
            + rows_cte(filters, within="active_dates")
            + ","
            + indexed_cte(filters, within="active_dates", judgements=judgements)
        )
    if indexed:
        return "WITH " + (rows_cte(filters) + "," if rows else "") + indexed_cte(filters, judgements=judgements)
    return "WITH " + rows_cte(filters) + "," + items_cte(detail=detail)


def _filtered_items_sql(
    filters: Filters,
    *,
    include_expected_filter: bool,
    detail: bool = False,
    indexed: bool = False,
    rows: bool = False,
    judgements: bool = False,
) -> str:
    """``WITH ... filtered AS (...)``: the items matching every filter (optionally but the toggle)."""
    conditions = [frag for name, frag in _ITEM_FILTERS.items() if getattr(filters, name)]
    if include_expected_filter and filters.hide_expected:
        conditions.append("NOT is_expected")
    where = " AND ".join(conditions) if conditions else "TRUE"
    if filters.changed:  # only the items that changed this way since the instant (lib/store/history.py)
        return (
            _base(filters, detail=detail, indexed=indexed, rows=True, since="changed_since", judgements=judgements)
            + history_ctes(["changed_since"])
            + ",\nfiltered AS (SELECT labelled.* FROM labelled JOIN item_history AS h"
            + "\n  ON h.source_table = labelled.source_table AND h.processor_name = labelled.processor_name"
            + "\n  AND h.item_date = labelled.item_date AND h.entity_id = labelled.entity_id\n  WHERE "
            + where
            + " AND "
            + change_condition(filters.changed, "changed_since")
            + ")\n"
        )
    return (
        _base(filters, detail=detail, indexed=indexed, rows=rows, judgements=judgements)
        + ",\nfiltered AS (SELECT * FROM labelled WHERE "
        + where
        + ")\n"
    )


#: The cube from the daily rollups: the same grouping as ``_SUMMARY`` over the items, already counted per date.
_ROLLUP_FILTERS = {
    "tables": "source_table IN UNNEST(@tables)",
    "processors": "processor_name IN UNNEST(@processors)",
    "categories": "failure_category IN UNNEST(@categories)",
    "failure_types": "failure_type IN UNNEST(@failure_types)",
    "correctable": "correctable_class IN UNNEST(@correctable)",
    "statuses": "status IN UNNEST(@statuses)",
}
_SUMMARY = """
SELECT processor_name, failure_category, MIN(phase) AS phase, item_date,
  failure_type_label AS failure_type, status, correctable_class, is_expected,
  COUNT(*) AS items, CAST(SUM(occurrences) AS INT64) AS occurrences
FROM filtered
GROUP BY processor_name, failure_category, item_date, failure_type_label, status, correctable_class, is_expected"""

#: The cube's two slices (``summary``): without the date, and per date without the processor and the status.
_STATE = ["processor_name", "failure_category", "failure_type", "status", "correctable_class", "is_expected"]
_DATES = ["item_date", "failure_type", "is_expected"]
_CUBE_COLUMNS = ("slice", "processor_name", "failure_category", "phase", "item_date", "failure_type", "status",
                 "correctable_class", "is_expected", "items", "occurrences")  # fmt: skip


def from_rollups(filters: Filters) -> bool:
    """The filters can be answered from the daily rollups (none needs the items themselves)."""
    return not (filters.entity or filters.entity_exact is not None or filters.changed or filters.disagree)


def rollup_conditions(filters: Filters) -> str:
    return "".join(f"\n  AND {frag}" for name, frag in _ROLLUP_FILTERS.items() if getattr(filters, name))


def _rollup_sql(filters: Filters) -> str:
    extra = rollup_conditions(filters)
    return f"""
WITH r AS (
  SELECT * FROM nba_processing.failure_rollups
  WHERE item_date BETWEEN @date_from AND @date_to{extra}
)
SELECT 'state' AS slice, processor_name, failure_category, MIN(phase) AS phase, CAST(NULL AS DATE) AS item_date,
  failure_type, status, correctable_class, is_expected, CAST(SUM(items) AS INT64) AS items,
  CAST(SUM(occurrences) AS INT64) AS occurrences
FROM r
GROUP BY {", ".join(_STATE)}
UNION ALL
SELECT 'dates' AS slice, CAST(NULL AS STRING), CAST(NULL AS STRING), CAST(NULL AS INT64), item_date, failure_type,
  CAST(NULL AS STRING), CAST(NULL AS STRING), is_expected, CAST(SUM(items) AS INT64), CAST(SUM(occurrences) AS INT64)
FROM r
GROUP BY {", ".join(_DATES)}"""


def _sliced(cube: pd.DataFrame) -> pd.DataFrame:
    """A per-date cube cut into ``summary``'s two slices (what the rollups' query returns)."""
    sums = {"items": ("items", "sum"), "occurrences": ("occurrences", "sum")}
    state = cube.groupby(_STATE, as_index=False, dropna=False).agg(phase=("phase", "min"), **sums)
    dates = cube.groupby(_DATES, as_index=False, dropna=False).agg(**sums)
    return pd.concat([state.assign(slice="state"), dates.assign(slice="dates")], ignore_index=True)


def summary(store: Store, filters: Filters) -> pd.DataFrame:
    """Item counts in two slices: ``state`` (by processor, category, type, status, correctability and
    expectedness) and ``dates`` (by date, type and expectedness).

    One query in the engine, over the daily rollups when no filter needs the items themselves; the overview's
    KPIs, matrix and trend and the patterns' shares are all cut from this small frame (``kpis_of``,
    ``matrix_of``, ``trend_of``) instead of asking the engine again. Its size does not grow with the
    processors and categories per date, so a season costs little more than a month.
    """
    use_index = indexed(store, filters)
    if use_index and from_rollups(filters):
        frame = store.query(_rollup_sql(filters), _params(filters), label="summary")
    else:
        sql = _filtered_items_sql(filters, include_expected_filter=False, indexed=use_index) + _SUMMARY
        frame = _sliced(store.query(sql, _params(filters), label="summary"))
    frame = frame[list(_CUBE_COLUMNS)].copy()
    frame["is_expected"] = frame["is_expected"].astype(bool)
    frame["phase"] = frame["phase"].astype("Int64")  # empty in the per-date slice
    dates = frame["item_date"]
    frame["item_date"] = dates.astype(object).where(dates.notna(), None)  # empty in the other slice
    for column in ("items", "occurrences"):
        frame[column] = frame[column].astype("int64")
    return frame


def state_of(cube: pd.DataFrame) -> pd.DataFrame:
    """The cube's slice without dates: items by processor, category, type, status and correctability."""
    return cube[cube["slice"] == "state"]


def dates_of(cube: pd.DataFrame) -> pd.DataFrame:
    """The cube's per-date slice: items by date, type and expectedness."""
    return cube[cube["slice"] == "dates"]


def _shown(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    return cube[~cube["is_expected"]] if hide_expected else cube


def filtered_items_sql(filters: Filters, *, detail: bool = False, indexed: bool = False, rows: bool = False) -> str:
    """``WITH ... filtered AS (...)``: every item matching the filters, for statements built on top; read from the
    index when ``indexed`` (with the ``failure_rows`` CTE as well when ``rows``), else computed from the rows."""
    return _filtered_items_sql(filters, include_expected_filter=True, detail=detail, indexed=indexed, rows=rows)


def labelled_sql(store: Store, filters: Filters, *, rows: bool = False, since: str = "") -> tuple[str, bool]:
    """``WITH ... labelled AS (...)`` (every item in the filters' dates and tables, unfiltered otherwise), from the
    item index where it can be kept, with ``failure_rows`` too when ``rows``; and whether it is the index. With
    ``since`` and the index, only the dates where something may have changed after that instant (``_base``)."""
    use_index = indexed(store, filters)
    return _base(filters, detail=False, indexed=use_index, rows=rows, since=since if use_index else ""), use_index


def base_sql(filters: Filters, *, rows: bool = False) -> str:
    """``WITH ... labelled AS (...)`` computed from the failure rows (with ``failure_rows`` too when ``rows``), never
    from the index: the reference the index's reads are held to."""
    return _base(filters, detail=False, indexed=False, rows=rows)


def relation(store: Store, filters: Filters, *, detail: bool = False, rows: bool = False) -> str:
    """``filtered_items_sql`` for this store: from the item index, brought up to date first, where it can be."""
    return filtered_items_sql(filters, detail=detail, indexed=indexed(store, filters), rows=rows)


def params_of(filters: Filters) -> dict[str, Any]:
    """The named parameters ``filtered_items_sql`` needs."""
    return _params(filters)


def kpis_of(cube: pd.DataFrame, hide_expected: bool) -> Kpis:
    cube = state_of(cube)
    shown = _shown(cube, hide_expected)

    def items(frame: pd.DataFrame) -> int:
        return int(frame["items"].sum())

    return Kpis(
        items=items(shown),
        occurrences=int(shown["occurrences"].sum()),
        unresolved=items(shown[shown["status"] == "UNRESOLVED"]),
        correctable=items(shown[shown["correctable_class"] == "correctable"]),
        uncorrectable=items(shown[shown["correctable_class"] == "uncorrectable"]),
        unclassified=items(shown[shown["failure_type"] == UNCLASSIFIED]),
        expected=items(cube[cube["is_expected"]]),
        all_items=items(cube),
    )


def matrix_of(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    """Items by processor and category (with occurrences), largest first."""
    shown = _shown(state_of(cube), hide_expected)
    grouped = shown.groupby(["processor_name", "failure_category"], as_index=False).agg(
        phase=("phase", "min"), items=("items", "sum"), occurrences=("occurrences", "sum")
    )
    return grouped.sort_values(["items", "processor_name", "failure_category"], ascending=[False, True, True],
                               ignore_index=True)  # fmt: skip


#: The trend's bars: per date while a range has at most this many dates, else per week, else per month (a chart
#: of 1,200 pixels shows no more; ten thousand daily bars were 0.17 s of JSON for nothing anyone could see).
TREND_MAX_BARS = 500


def trend_period(first: dt.date, last: dt.date) -> str:
    """``day``, ``week`` (from Monday) or ``month``: the finest with at most ``TREND_MAX_BARS`` bars over the range."""
    days = (last - first).days + 1
    if days <= TREND_MAX_BARS:
        return "day"
    return "week" if days <= TREND_MAX_BARS * 7 else "month"


def trend_of(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    """Items per date (or per week or month over a long range: ``trend_period``) and failure type; ``item_date``
    is the period's first day and ``period_end`` its last (the same date for a day)."""
    shown = _shown(dates_of(cube), hide_expected)
    columns = ["item_date", "period_end", "failure_type", "items", "occurrences"]
    if shown.empty:
        return pd.DataFrame(columns=columns)
    days = pd.to_datetime(shown["item_date"])
    period = trend_period(days.min().date(), days.max().date())
    if period == "day":
        start, end = days, days
    elif period == "week":
        start = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
        end = start + pd.Timedelta(days=6)
    else:
        start = days - pd.to_timedelta(days.dt.day - 1, unit="D")
        end = start + pd.to_timedelta(days.dt.days_in_month - 1, unit="D")
    # Grouped on the instants, then the few periods made dates (not the ten thousand rows of a long history).
    shown = shown.assign(item_date=start, period_end=end)
    grouped = shown.groupby(["item_date", "period_end", "failure_type"], as_index=False)[["items", "occurrences"]].sum()
    grouped = grouped.sort_values(["item_date", "failure_type"], ignore_index=True)
    grouped["item_date"], grouped["period_end"] = grouped["item_date"].dt.date, grouped["period_end"].dt.date
    return grouped[columns]


def kpis(store: Store, filters: Filters) -> Kpis:
    return kpis_of(summary(store, filters), filters.hide_expected)


def matrix(store: Store, filters: Filters) -> pd.DataFrame:
    return matrix_of(summary(store, filters), filters.hide_expected)


def trend(store: Store, filters: Filters) -> pd.DataFrame:
    return trend_of(summary(store, filters), filters.hide_expected)


def count_items(store: Store, filters: Filters) -> int:
    sql = relation(store, filters) + "SELECT COUNT(*) AS n FROM filtered"
    return int(store.query(sql, _params(filters), label="count").iloc[0]["n"])


def _ordered_sql(store: Store, filters: Filters, sort: str) -> str:
    return relation(store, filters, detail=True) + f"SELECT {ITEM_COLUMNS}\nFROM filtered\nORDER BY {_SORTS[sort]}\n"


def list_items(store: Store, filters: Filters, page: Page) -> pd.DataFrame:
    params = {**_params(filters), "page_limit": page.size, "page_offset": (page.number - 1) * page.size}
    sql = _ordered_sql(store, filters, page.sort) + "LIMIT @page_limit OFFSET @page_offset"
    return with_keys(store.query(sql, params, label="list"))


def iter_items(
    store: Store, filters: Filters, *, sort: str = "newest date", chunk: int = 50_000
) -> Iterator[pd.DataFrame]:
    """Every matching item, from one ordered query streamed in frames of ``chunk`` rows, for exports."""
    for frame in store.stream(_ordered_sql(store, filters, sort), _params(filters), chunk=chunk, label="export"):
        yield with_keys(frame)


def get_item(store: Store, key: ItemKey) -> pd.Series | None:
    """One item by its key (any status, expected or not), or None if no row of it is left."""
    scope = Filters(
        date_from=key.item_date,
        date_to=key.item_date,
        tables=(key.source_table,),
        processors=(key.processor_name,),
        hide_expected=False,
    )
    use_index = indexed(store, scope)
    sql = _filtered_items_sql(scope, include_expected_filter=False, detail=True, indexed=use_index) + (
        f"SELECT {ITEM_COLUMNS}\nFROM filtered\nWHERE entity_id = @entity_id"
    )
    frame = with_keys(store.query(sql, {**_params(scope), "entity_id": key.entity_id}, label="item"))
    return frame.iloc[0] if len(frame) else None


_JUDGEMENTS = """
SELECT source_table, processor_name, item_date, entity_id, pipeline_type, pipeline_correctable, at AS judged_at
FROM nba_processing.item_judgements
WHERE item_date BETWEEN @date_from AND @date_to AND entity_id IN UNNEST(@entities)
  AND processor_name IN UNNEST(@processors)
QUALIFY ROW_NUMBER() OVER (PARTITION BY source_table, processor_name, item_date, entity_id ORDER BY at DESC) = 1"""

_ITEM_KEY = ["source_table", "processor_name", "item_date", "entity_id"]


def with_pipeline_verdicts(store: Store, items: pd.DataFrame) -> pd.DataFrame:
    """``items`` (a page: keys, ``failure_type``, ``is_correctable``, ``last_seen``) with what the pipeline had said
    beside the dashboard's verdict: ``pipeline_type``, ``pipeline_correctable``, ``judged`` (the dashboard judged
    the item since its rows were written: its verdict is ours) and ``disagrees`` (judged, and the pipeline had
    said another verdict or correctability). Items matched exactly by their four key parts."""
    out = items.copy()
    for column, empty in (("pipeline_type", None), ("pipeline_correctable", pd.NA), ("judged", False),
                          ("disagrees", False)):  # fmt: skip
        out[column] = empty
    if items.empty or "nba_processing.item_judgements" not in store.existing_tables():
        out["pipeline_type"], out["pipeline_correctable"] = out["failure_type"], out["is_correctable"]
        return out
    params = {
        "date_from": min(items["item_date"]),
        "date_to": max(items["item_date"]),
        "entities": sorted({str(e) for e in items["entity_id"]}),
        "processors": sorted({str(p) for p in items["processor_name"]}),
    }
    found = store.query(_JUDGEMENTS, params, label="judgements")
    merged = out.drop(columns=["pipeline_type", "pipeline_correctable"]).merge(
        found, how="left", on=_ITEM_KEY, validate="one_to_one"
    )
    for column in ("pipeline_type", "pipeline_correctable"):  # any value may be set below (None, a bool, a text)
        merged[column] = merged[column].astype(object)
    seen = pd.to_datetime(merged["last_seen"], utc=True).fillna(pd.Timestamp(0, tz="UTC"))
    judged = merged["judged_at"].notna() & (pd.to_datetime(merged["judged_at"], utc=True) >= seen)
    merged["judged"] = judged.to_numpy(dtype=bool)
    # Not judged since its rows were written: the verdict shown is the pipeline's own.
    merged.loc[~judged, "pipeline_type"] = merged.loc[~judged, "failure_type"]
    merged.loc[~judged, "pipeline_correctable"] = merged.loc[~judged, "is_correctable"]
    said = merged["pipeline_type"].notna()
    differs = (merged["pipeline_type"].astype("string") != merged["failure_type"].astype("string")).fillna(True) | (
        merged["pipeline_correctable"].astype("string").fillna("-")
        != merged["is_correctable"].astype("string").fillna("-")
    )
    merged["disagrees"] = (judged & said & differs).to_numpy(dtype=bool)
    return merged.drop(columns=["judged_at"])


def _disagreement_sql(base: str, *, indexed: bool) -> str:
    """Per failure type of ``filtered``: items, judged by us since their rows were written, with a verdict of the
    pipeline's before ours, and of those, different. Our latest verdicts come with the items from the index, or
    are read from item_judgements (``judged_cte``, the same rule)."""
    j = "f" if indexed else "j"
    join = "" if indexed else (
        "\n  LEFT JOIN judged AS j ON j.source_table = f.source_table AND j.processor_name = f.processor_name"
        "\n    AND j.item_date = f.item_date AND j.entity_id = f.entity_id"
    )  # fmt: skip
    return f"""
{base}{"" if indexed else "," + judged_cte()},
flags AS (
  SELECT f.failure_type_label AS failure_type,
    {judged_sql(f"{j}.judged_at", "f")} AS is_judged,
    {compared_sql(j, f"{j}.judged_at", "f")} AS compared,
    {differs_sql(j, f"{j}.judged_at", "f")} AS differs
  FROM filtered AS f{join}
)
SELECT failure_type, COUNT(*) AS items, COUNTIF(is_judged) AS judged, COUNTIF(compared) AS pipeline_judged,
  COUNTIF(differs) AS disagree
FROM flags
GROUP BY failure_type
ORDER BY items DESC, failure_type"""


def disagreement(store: Store, filters: Filters) -> pd.DataFrame:
    """Per failure type (ours) of the filtered items: how many, how many the dashboard judged since their rows
    were written, how many of those the pipeline had given a verdict, and how many of those it disagreed with."""
    columns = ["failure_type", "items", "judged", "pipeline_judged", "disagree"]
    if "nba_processing.item_judgements" not in store.existing_tables():
        return pd.DataFrame(columns=columns)
    use_index = indexed(store, filters)
    if use_index and from_rollups(filters):
        return store.query(_rollup_disagreement_sql(filters), _params(filters), label="disagreement")[columns]
    base = _filtered_items_sql(filters, include_expected_filter=True, indexed=use_index, judgements=use_index)
    return store.query(_disagreement_sql(base.rstrip(), indexed=use_index), _params(filters),
                       label="disagreement")[columns]  # fmt: skip


def _rollup_disagreement_sql(filters: Filters) -> str:
    """``_disagreement_sql`` from the daily rollups, which count each group's judged, compared and differing items
    when the index is built (the same flags, lib/store/index.py ``_INSERT_ROLLUPS``)."""
    extra = rollup_conditions(filters)
    if filters.hide_expected:
        extra += "\n  AND NOT is_expected"
    return f"""
SELECT failure_type, CAST(SUM(items) AS INT64) AS items, CAST(SUM(judged) AS INT64) AS judged,
  CAST(SUM(pipeline_judged) AS INT64) AS pipeline_judged, CAST(SUM(disagree) AS INT64) AS disagree
FROM nba_processing.failure_rollups
WHERE item_date BETWEEN @date_from AND @date_to{extra}
GROUP BY failure_type
ORDER BY items DESC, failure_type"""


_TO_JUDGE = """
SELECT COUNT(*) AS n FROM nba_processing.failure_items
WHERE item_date BETWEEN @date_from AND @date_to
  AND (failure_type IS NULL OR judged_at IS NULL
    OR judged_at < COALESCE(last_seen, TIMESTAMP '1970-01-01 00:00:00+00'))"""


def count_to_judge(store: Store, date_from: dt.date | None, date_to: dt.date | None) -> int | None:
    """From the item index: the items of these dates a classification run would judge (no verdict, or none of ours
    since their rows were written: lib/engine_verdicts.py ``TO_JUDGE``); None where the index cannot be used."""
    scope = Filters(date_from=date_from, date_to=date_to, hide_expected=False)
    if not indexed(store, scope):
        return None
    return int(store.query(_TO_JUDGE, _params(scope), label="to-classify")["n"].iloc[0])


_MISSING_GAMES = """
SELECT game_date, game_id, team_abbr, verdict, is_correctable, dnp_reason, run_id, classified_at
FROM nba_processing.failure_missing_games
WHERE analysis_date = @item_date AND source_table = @source_table AND processor_name = @processor_name
  AND entity_id = @entity_id
ORDER BY game_date, team_abbr"""


def missing_games(store: Store, key: ItemKey) -> pd.DataFrame:
    """The classifier's verdict on each missing game of an item (empty until it is classified)."""
    params = {
        "item_date": key.item_date,
        "source_table": key.source_table,
        "processor_name": key.processor_name,
        "entity_id": key.entity_id,
    }
    return store.query(_MISSING_GAMES, params, label="missing-games")


def with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the item's text key ``TABLE:PROCESSOR:YYYY-MM-DD:ENTITY`` as the first column."""
    keys = (
        (
            frame["source_table"].astype(str)
            + ":"
            + frame["processor_name"].map(lambda p: encode_key_part("" if p is None else str(p)))
            + ":"
            + frame["item_date"].map(lambda d: d.isoformat() if d is not None else "").astype(str)
            + ":"
            + frame["entity_id"].astype(str)
        )
        if len(frame)
        else pd.Series([], dtype=object)
    )
    frame.insert(0, "key", keys)
    return frame


def choices(store: Store, filters: Filters) -> Choices:
    """Processors and categories of the items in the date range: what the filters can match (a category only an
    item's older rows carry matches nothing, since items are filtered by their latest row)."""
    scope = Filters(date_from=filters.date_from, date_to=filters.date_to)
    if indexed(store, scope):
        sql = """
SELECT processor_name, failure_category, COUNT(*) AS n FROM nba_processing.failure_rollups
WHERE item_date BETWEEN @date_from AND @date_to
GROUP BY processor_name, failure_category"""
    else:
        sql = (
            _base(scope, detail=False, indexed=False, rows=False)
            + """
SELECT processor_name, failure_category, COUNT(*) AS n FROM labelled
GROUP BY processor_name, failure_category"""
        )
    frame = store.query(sql, _params(scope), label="choices")
    return Choices(
        processors=tuple(sorted(set(frame["processor_name"]))),
        categories=tuple(sorted(set(frame["failure_category"]), key=lambda c: (c.upper(), c))),
    )


def bounds(store: Store) -> DataBounds:
    first, last, rows, plausible, undated = store.date_extent()
    return DataBounds(first, last, rows, plausible, undated)
