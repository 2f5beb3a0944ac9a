"""How fast failures get settled: backlog age, time to settle, the auto-resolved share, regressions.

Definitions (the items are those the filters cover; the status filter does not apply here):

* **Backlog age**: open items (UNRESOLVED, INVESTIGATING, REGRESSED) by the time since a run first recorded
  them (their earliest ``created_at``).
* **A settlement** is an event that takes an item from an open status to RESOLVED or PERMANENT. Its **time
  to settle** runs from when the item became open: its first recorded row for a first settlement; after a
  previous settlement, the first row recorded after it (a regression) or the first event that reopened it,
  whichever came first. Settlements with no such start (every row arrived later) are not timed.
* **Auto-resolved**: settlements the nightly auto-resolve made (origin ``autoresolve``).
* **A regression** is a RESOLVED decision after which a run recorded the item again before anyone decided
  on it again; it happened when that first new row was recorded.

Quantiles are nearest-rank (the median of 1, 2, 3, 10 is 2), exact over every settlement.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.model import OPEN_STATUSES, SETTLED_STATUSES, Filters
from lib.store import queries as q
from lib.store.base import Store
from lib.store.history import EVENTS_CTE

#: Backlog age buckets: (label, upper bound in hours); the last one is open-ended.
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 1 day", 24),
    ("1-3 days", 72),
    ("3-7 days", 168),
    ("1-2 weeks", 336),
    ("2-4 weeks", 672),
    ("over 4 weeks", math.inf),
)
UNKNOWN_AGE = "age unknown"

_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
_SETTLED = ", ".join(f"'{s}'" for s in SETTLED_STATUSES)
_KEYS = ("source_table", "processor_name", "item_date", "entity_id")
_KEY_LIST = ", ".join(_KEYS)


def _on(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in _KEYS)


def _scope(filters: Filters) -> Filters:
    return filters.with_(statuses=(), changed="", changed_since=None)


#: The age bucket of an item (its position in AGE_BUCKETS; -1 when its age is unknown), computed in the engine
#: by comparing first_seen with each bucket's boundary (``@age_N``: now minus the bucket's upper bound), so that
#: a backlog of millions of items comes back as six numbers.
_BUCKET = (
    "CASE WHEN first_seen IS NULL THEN -1\n"
    + "".join(
        f"  WHEN first_seen > @age_{i} THEN {i}\n" for i, (_, upper) in enumerate(AGE_BUCKETS) if upper != math.inf
    )
    + f"  ELSE {len(AGE_BUCKETS) - 1} END"
)


def _age_bounds(now: dt.datetime) -> dict[str, dt.datetime]:
    return {
        f"age_{i}": now - dt.timedelta(hours=upper) for i, (_, upper) in enumerate(AGE_BUCKETS) if upper != math.inf
    }


_BACKLOG = f"""
SELECT {_BUCKET} AS bucket, COUNT(*) AS items
FROM filtered
WHERE status IN ({_OPEN})
GROUP BY {_BUCKET}"""

_OLDEST = f"""
SELECT source_table, phase, processor_name, item_date, entity_id, occurrences, first_seen, last_seen,
  failure_category, failure_type_label AS failure_type, correctable_class, status, status_at
FROM filtered
WHERE status IN ({_OPEN})
ORDER BY first_seen ASC NULLS LAST, item_date, source_table, processor_name, entity_id
LIMIT @limit"""

_SETTLEMENTS = f""",
settles AS (
  SELECT e.*, LAG(e.at) OVER (PARTITION BY {", ".join("e." + k for k in _KEYS)} ORDER BY e.o) AS prev_at
  FROM hist_events AS e
  WHERE e.to_status IN ({_SETTLED}) AND COALESCE(e.from_status, '') NOT IN ({_SETTLED})
),
reopened_by_row AS (
  SELECT {", ".join("s." + k for k in _KEYS)}, s.o, MIN(r.created_at) AS t
  FROM settles AS s JOIN failure_rows AS r ON {_on("r", "s")}
  WHERE s.prev_at IS NOT NULL AND r.created_at > s.prev_at AND r.created_at <= s.at
  GROUP BY {", ".join("s." + k for k in _KEYS)}, s.o
),
reopened_by_event AS (
  SELECT {", ".join("s." + k for k in _KEYS)}, s.o, MIN(e.at) AS t
  FROM settles AS s JOIN hist_events AS e ON {_on("e", "s")}
  WHERE s.prev_at IS NOT NULL AND e.at > s.prev_at AND e.o < s.o AND e.to_status NOT IN ({_SETTLED})
  GROUP BY {", ".join("s." + k for k in _KEYS)}, s.o
),
timed AS (
  SELECT s.*, f.failure_type_label,
    CASE
      WHEN s.prev_at IS NULL THEN f.first_seen
      WHEN rr.t IS NULL THEN re.t
      WHEN re.t IS NULL THEN rr.t
      ELSE LEAST(rr.t, re.t)
    END AS open_since
  FROM settles AS s
  JOIN filtered AS f ON {_on("f", "s")}
  LEFT JOIN reopened_by_row AS rr ON {_on("rr", "s")} AND rr.o = s.o
  LEFT JOIN reopened_by_event AS re ON {_on("re", "s")} AND re.o = s.o
)
SELECT DATE(at) AS day, processor_name, failure_type_label AS failure_type, origin = 'autoresolve' AS auto,
  IF(open_since IS NULL OR open_since > at, NULL, TIMESTAMP_DIFF(at, open_since, SECOND)) AS seconds,
  COUNT(*) AS n
FROM timed
GROUP BY DATE(at), processor_name, failure_type_label, origin = 'autoresolve',
  IF(open_since IS NULL OR open_since > at, NULL, TIMESTAMP_DIFF(at, open_since, SECOND))"""

_REGRESSIONS = f""",
decided AS (
  SELECT e.*, LEAD(e.at) OVER (PARTITION BY {", ".join("e." + k for k in _KEYS)} ORDER BY e.o) AS next_at
  FROM hist_events AS e
),
regressions AS (
  SELECT {", ".join("d." + k for k in _KEYS)}, d.o, MIN(r.created_at) AS regressed_at
  FROM decided AS d JOIN failure_rows AS r ON {_on("r", "d")}
  WHERE d.to_status = 'RESOLVED' AND r.created_at > d.at AND (d.next_at IS NULL OR r.created_at < d.next_at)
  GROUP BY {", ".join("d." + k for k in _KEYS)}, d.o
)
SELECT DATE(g.regressed_at) AS day, g.processor_name, f.failure_type_label AS failure_type, COUNT(*) AS n
FROM regressions AS g JOIN filtered AS f ON {_on("f", "g")}
GROUP BY DATE(g.regressed_at), g.processor_name, f.failure_type_label"""


def _with(store: Store, filters: Filters, tail: str) -> str:
    """The filtered items with the failure rows (what timing needs) and the statement after them."""
    return q.relation(store, filters, rows=True).rstrip() + tail


def week_of(day: object) -> dt.date:
    """The Monday of ``day``'s week."""
    d = pd.Timestamp(str(day)).date()
    return d - dt.timedelta(days=d.weekday())


def weeks_of(days: pd.Series) -> pd.Series:
    """``week_of`` of every day at once (dates, or their text)."""
    stamps = days if pd.api.types.is_datetime64_any_dtype(days) else pd.to_datetime(days.astype(str))
    return (stamps - pd.to_timedelta(stamps.dt.day_of_week, unit="D")).dt.date


def _rollup_backlog(filters: Filters) -> str:
    """The backlog from the daily rollups, which count the open items per day they were first seen: the items per such
    day, except the days that hold a bucket's boundary (``@edge_days``), for which it gives the item dates their items
    are on (``edge_date``): those items alone are then read and bucketed one by one. A day without a boundary lies
    wholly in one bucket."""
    expected = "\n    AND NOT is_expected" if filters.hide_expected else ""
    return f"""
WITH r AS (
  SELECT item_date, first_seen_day, items FROM nba_processing.failure_rollups
  WHERE item_date BETWEEN @date_from AND @date_to{q.rollup_conditions(filters)}
    AND status IN ({_OPEN}){expected}
)
SELECT first_seen_day, CAST(NULL AS DATE) AS edge_date, CAST(SUM(items) AS INT64) AS items
FROM r
WHERE first_seen_day IS NULL OR first_seen_day NOT IN UNNEST(@edge_days)
GROUP BY first_seen_day
UNION ALL
SELECT CAST(NULL AS DATE), item_date, CAST(SUM(items) AS INT64)
FROM r
WHERE first_seen_day IN UNNEST(@edge_days)
GROUP BY item_date"""


_EDGE_BACKLOG = f"""
SELECT {_BUCKET} AS bucket, COUNT(*) AS items
FROM filtered
WHERE status IN ({_OPEN}) AND DATE(first_seen) IN UNNEST(@edge_days) AND item_date IN UNNEST(@edge_dates)
GROUP BY {_BUCKET}"""


def _bucket_of(at: dt.datetime, bounds: dict[str, dt.datetime]) -> int:
    """The bucket of an instant, as ``_BUCKET`` computes it in the engine."""
    for i in range(len(bounds)):
        if at > bounds[f"age_{i}"]:
            return i
    return len(AGE_BUCKETS) - 1


def _day_buckets(days: pd.Series, items: pd.Series, bounds: dict[str, dt.datetime]) -> list[tuple[int, int]]:
    """Items per bucket of the days' starts (midnight UTC), as ``_bucket_of`` puts each (-1: no day). At once for the
    ten thousand days of a 30M history: the bounds fall with the bucket, so an instant's bucket is the number of
    bounds at or after it."""
    counts = items.astype("int64").to_numpy()
    known = days.notna().to_numpy()
    starts = days[known]
    if isinstance(starts.dtype, pd.DatetimeTZDtype):
        starts = starts.dt.tz_convert("UTC").dt.tz_localize(None)
    # In microseconds, whose range holds every calendar day (nanoseconds end in 2262: a first recording dated
    # 9999-12-31 or 0001-01-01 is a day like another here).
    at = np.asarray(starts, dtype="datetime64[us]").astype("int64")
    ascending = np.array(sorted(pd.Timestamp(b).value // 1000 for b in bounds.values()), dtype="int64")
    bucket = len(ascending) - np.searchsorted(ascending, at, side="left")
    sums = np.bincount(bucket, weights=counts[known], minlength=len(AGE_BUCKETS))
    out = [(i, int(n)) for i, n in enumerate(sums) if n]
    unknown = int(counts[~known].sum())
    return [*out, (-1, unknown)] if unknown else out


def backlog_age(store: Store, filters: Filters, *, now: dt.datetime) -> pd.DataFrame:
    """Open items per age bucket (every bucket, in order, zero where empty). From the daily rollups where the index
    serves the filters (the items of the boundaries' days alone are read: at 30M rows 0.22 s to a few hundredths),
    else from the items."""
    scope = _scope(filters)
    bounds = _age_bounds(now)
    buckets: list[tuple[int, int]] = []
    if q.indexed(store, scope) and q.from_rollups(scope):
        edges = sorted({at.date() for at in bounds.values()})
        frame = store.query(_rollup_backlog(scope), {**q.params_of(scope), "edge_days": edges}, label="backlog-age")
        whole = frame[frame["edge_date"].isna()]
        buckets += _day_buckets(whole["first_seen_day"], whole["items"], bounds)
        dates = sorted(pd.Timestamp(d).date() for d in frame["edge_date"].dropna())
        if dates:  # the items first seen on a boundary's day: on these dates only
            near = scope.with_(date_from=dates[0], date_to=dates[-1])
            edge = store.query(q.relation(store, near) + _EDGE_BACKLOG,
                               {**q.params_of(near), **bounds, "edge_days": edges, "edge_dates": dates},
                               label="backlog-age-edges")  # fmt: skip
            buckets += [(int(b), int(n)) for b, n in zip(edge["bucket"], edge["items"], strict=True)]
    else:
        frame = store.query(q.relation(store, scope) + _BACKLOG, {**q.params_of(scope), **bounds}, label="backlog-age")
        buckets = [(int(b), int(n)) for b, n in zip(frame["bucket"], frame["items"], strict=True)]
    counts = dict.fromkeys([label for label, _ in AGE_BUCKETS] + [UNKNOWN_AGE], 0)
    for bucket, items in buckets:
        counts[AGE_BUCKETS[bucket][0] if bucket >= 0 else UNKNOWN_AGE] += items
    if not counts[UNKNOWN_AGE]:
        del counts[UNKNOWN_AGE]
    return pd.DataFrame({"age": list(counts), "items": list(counts.values())})


def oldest_open(store: Store, filters: Filters, *, limit: int = 20) -> pd.DataFrame:
    """The open items first recorded longest ago."""
    scope = _scope(filters)
    frame = store.query(q.relation(store, scope) + _OLDEST, {**q.params_of(scope), "limit": limit},
                        label="oldest-open")  # fmt: skip
    return q.with_keys(frame)


def settlements(store: Store, filters: Filters) -> pd.DataFrame:
    """Settlements per day, processor, failure type, auto or not and time to settle (seconds; NULL if untimed)."""
    scope = _scope(filters)
    frame = store.query(_with(store, scope, EVENTS_CTE + _SETTLEMENTS), q.params_of(scope), label="settlements")
    frame["auto"] = frame["auto"].fillna(False).astype(bool)
    return frame


def regressions(store: Store, filters: Filters) -> pd.DataFrame:
    """Regressions per day (when the item was recorded again after being resolved), processor, failure type."""
    scope = _scope(filters)
    return store.query(_with(store, scope, EVENTS_CTE + _REGRESSIONS), q.params_of(scope), label="regressions")


def nearest_rank(values: pd.Series, weights: pd.Series, share: float) -> float | None:
    """The nearest-rank quantile of ``values`` repeated ``weights`` times (None when there are none)."""
    frame = pd.DataFrame({"v": values.astype(float), "w": weights.astype(int)}).dropna()
    frame = frame[frame["w"] > 0].sort_values("v")
    total = int(frame["w"].sum())
    if total == 0:
        return None
    rank = max(1, math.ceil(share * total))
    return float(frame["v"].iloc[int((frame["w"].cumsum() >= rank).to_numpy().argmax())])


def _nearest_ranks(gid: np.ndarray, seconds: np.ndarray, n: np.ndarray, groups: int, share: float) -> np.ndarray:
    """``nearest_rank`` of every group at once. ``gid``, ``seconds`` and ``n`` are the timed rows (positive weights),
    sorted by group, then seconds: per group, the first value whose running weight reaches ``ceil(share * total)``
    (at least 1); NaN for a group without timed rows."""
    out = np.full(groups, np.nan)
    if not len(gid):
        return out
    total = np.bincount(gid, weights=n, minlength=groups)
    running = np.cumsum(n)
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    before = np.repeat(running[starts] - n[starts], np.diff(np.r_[starts, len(gid)]))
    reached = (running - before) >= np.maximum(1, np.ceil(share * total[gid]))
    hits = np.flatnonzero(reached)
    first = hits[np.r_[True, gid[hits][1:] != gid[hits][:-1]]]  # the first hit of each group (sorted by group)
    out[gid[first]] = seconds[first]
    return out


def time_to_settle(settled: pd.DataFrame, by: tuple[str, ...] = ("processor_name", "failure_type")) -> pd.DataFrame:
    """Per week (Monday) and ``by``: settlements, auto-resolved ones, median and 90th percentile hours (nearest
    rank, as ``nearest_rank``, computed for every group at once with one grouping and array sums: a whole history
    has hundreds of groups and thousands of rows)."""
    columns = ["week", *by, "settled", "auto_settled", "median_hours", "p90_hours"]
    if settled.empty:
        return pd.DataFrame(columns=columns)
    keys = ["week", *by]
    frame = settled.assign(week=weeks_of(settled["day"]))
    grouping = frame.groupby(keys, sort=True, dropna=False)
    gid = grouping.ngroup().to_numpy()
    out = grouping.size().reset_index()[keys]
    groups = len(out)
    n = frame["n"].astype(int).to_numpy()
    auto = frame["auto"].astype(bool).to_numpy()
    out["settled"] = np.bincount(gid, weights=n, minlength=groups).astype(int)
    out["auto_settled"] = np.bincount(gid, weights=np.where(auto, n, 0), minlength=groups).astype(int)
    seconds = pd.to_numeric(frame["seconds"], errors="coerce").to_numpy(dtype=float)
    timed = ~np.isnan(seconds) & (n > 0)
    t_gid, t_seconds, t_n = gid[timed], seconds[timed], n[timed].astype(float)
    order = np.lexsort((t_seconds, t_gid))
    t_gid, t_seconds, t_n = t_gid[order], t_seconds[order], t_n[order]
    for share, name in ((0.5, "median_hours"), (0.9, "p90_hours")):
        hours = _nearest_ranks(t_gid, t_seconds, t_n, groups, share) / 3600
        out[name] = pd.Series(hours, dtype=object).where(~np.isnan(hours), None)
    return out[columns]


def weekly(settled: pd.DataFrame, regressed: pd.DataFrame) -> pd.DataFrame:
    """Per week: settlements, the auto-resolved share, median and p90 hours to settle, regressions."""
    totals = time_to_settle(settled, by=())
    reg = pd.DataFrame(
        regressed.assign(week=weeks_of(regressed["day"])).groupby("week", as_index=False)["n"].sum()
        if not regressed.empty
        else pd.DataFrame(columns=["week", "n"])
    ).rename(columns={"n": "regressions"})
    out = totals.merge(reg, on="week", how="outer").sort_values("week", ignore_index=True)
    for column in ("settled", "auto_settled", "regressions"):
        out[column] = out[column].fillna(0).astype(int)
    out["auto_share"] = [a / s if s else None for a, s in zip(out["auto_settled"], out["settled"], strict=True)]
    return out[["week", "settled", "auto_settled", "auto_share", "median_hours", "p90_hours", "regressions"]]


@dataclass(frozen=True)
class Settling:
    backlog: pd.DataFrame
    oldest: pd.DataFrame
    by_week: pd.DataFrame
    by_processor: pd.DataFrame


def settling(store: Store, filters: Filters, *, now: dt.datetime, oldest: int = 20) -> Settling:
    """The Settling page's figures. Its four reads are independent: they run at once (each on a cursor of its own;
    on BigQuery, four round trips in the time of one)."""
    q.indexed(store, filters)  # the index brought up to date once, before the reads share it
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        settled = pool.submit(settlements, store, filters)
        regressed = pool.submit(regressions, store, filters)
        backlog = pool.submit(backlog_age, store, filters, now=now)
        oldest_items = pool.submit(oldest_open, store, filters, limit=oldest)
        settled_frame = settled.result()
        return Settling(
            backlog=backlog.result(),
            oldest=oldest_items.result(),
            by_week=weekly(settled_frame, regressed.result()),
            by_processor=time_to_settle(settled_frame),
        )
