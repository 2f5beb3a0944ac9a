"""The overview's "what changed" panel: the comparison point, the change counts with links, the visit log."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from lib import briefing, reruns
from lib.errors import TriageError
from lib.model import CHANGE_KINDS, Actor, Filters, parse_instant
from lib.store import Store
from ui import data
from ui.context import FIRST_START
from ui.widgets import fmt_hours, fmt_int, md, tile

K_COMPARE = "compare"  # bound to the URL: a shared link keeps its comparison
K_AT_DAY, K_AT_TIME = "compare_day", "compare_time"
K_VISIT = "briefing_previous_visit"  # {operator: previous visit or None}, read once per session
K_VISIT_PROBLEM = "briefing_visit_problem"

LAST_DAY, LAST_VISIT, CHOSEN = "24 hours ago", "My last visit", "A chosen time"

HELP = {
    "new": "Items first recorded after the comparison point.",
    "regressed": "Items resolved before, recorded again by a run since (REGRESSED now, not then).",
    "settled": "Items RESOLVED or PERMANENT now that were not then.",
    "reclassified": "Items whose failure type or correctability differs from the one shown then.",
    "new_correctable": "Open correctable items now that were not open and correctable then.",
}
ICONS = {
    "new": ":material/fiber_new:",
    "regressed": ":material/replay:",
    "settled": ":material/task_alt:",
    "reclassified": ":material/swap_horiz:",
    "new_correctable": ":material/build:",
}


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def remember_visit(store: Store, actor: Actor | None) -> None:
    """Once per session and operator: keep the previous visit for "since my last visit", record this one."""
    if actor is None or not actor.name.strip() or actor.name.strip().casefold() == "system":
        return
    seen: dict[str, dt.datetime | None] = st.session_state.setdefault(K_VISIT, {})
    name = actor.name.strip()
    if name in seen:
        return
    now = dt.datetime.now(dt.UTC)
    try:
        # A reload or a second tab within the hour is the same visit: compare with the one before it, and
        # write nothing (a write would also empty every cache of the embedded engine).
        seen[name] = briefing.last_visit(store, name, before=now - briefing.VISIT_GAP)
        latest = briefing.last_visit(store, name, before=now + dt.timedelta(seconds=1))
        if latest is None or latest < now - briefing.VISIT_GAP:
            briefing.record_visit(store, actor, at=now)
    except TriageError as exc:  # a read-only database: browse on, without remembering
        seen.setdefault(name, None)
        st.session_state[K_VISIT_PROBLEM] = exc.what


def _comparison(actor: Actor | None, now: dt.datetime) -> tuple[dt.datetime, str] | None:
    """The comparison point the operator chose, and how to say it; None when it cannot be used yet."""
    choice = st.segmented_control(
        "Compare with",
        [LAST_DAY, LAST_VISIT, CHOSEN],
        default=LAST_DAY,
        key=K_COMPARE,
        bind="query-params",
        label_visibility="collapsed",
    )
    if choice == LAST_VISIT:
        name = actor.name.strip() if actor else ""
        if not name:
            st.caption(":material/person: Give your name in the sidebar (or sign in) to compare with your last visit.")
            return None
        previous = st.session_state.get(K_VISIT, {}).get(name)
        if previous is None:
            problem = st.session_state.get(K_VISIT_PROBLEM)
            st.caption(
                f":material/history: No earlier visit of **{md(name)}** is recorded"
                + (f" ({md(problem)})" if problem else "")
                + ": comparing with 24 hours ago."
            )
            return now - dt.timedelta(hours=briefing.DEFAULT_HOURS), "24 hours ago"
        return previous, f"your last visit ({previous:%Y-%m-%d %H:%M} UTC)"
    if choice == CHOSEN:
        default = now - dt.timedelta(days=7)
        left, right = st.columns(2)
        day = left.date_input("Day (UTC)", value=default.date(), max_value=now.date(), key=K_AT_DAY)
        time = right.time_input("Time (UTC)", value=dt.time(default.hour, 0), key=K_AT_TIME, step=3600)
        if not isinstance(day, dt.date) or not isinstance(time, dt.time):
            return None
        at = parse_instant(f"{day.isoformat()}T{time.isoformat()}")
        if at >= now:
            st.warning("The chosen time is in the future: choose a time before now.")
            return None
        return at, f"{at:%Y-%m-%d %H:%M} UTC"
    return now - dt.timedelta(hours=briefing.DEFAULT_HOURS), "24 hours ago"


def _delta(n: int) -> str:
    return f"{n:+,} vs the period before" if n else "same as the period before"


def panel(store: Store, f: Filters, actor: Actor | None) -> briefing.Briefing | None:
    """Draw the panel; returns the briefing (for the KPIs' deltas), or None when there is nothing to compare."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    with st.container(border=True):
        head, choose = st.columns([1.4, 2], vertical_alignment="center")
        head.markdown("#### :material/notifications: What changed")
        with choose:
            chosen = _comparison(actor, now)
        if chosen is None:
            return None
        since, said = chosen
        now = max(now, since + dt.timedelta(seconds=1))  # a visit earlier this very minute
        b = data.briefing(store, f, since=since, now=now)
        st.caption(
            f"Since {md(said)} ({since:%a %b %d, %H:%M} UTC) for the items the sidebar covers; each delta compares "
            f"with the {_span(now - since)} before."
        )
        cols = st.columns(len(CHANGE_KINDS))
        for col, (kind, label) in zip(cols, CHANGE_KINDS.items(), strict=True):
            with col:
                shown = b.counts[kind] or b.previous[kind]
                arrow = "auto" if b.delta(kind) else "off"
                _, value, help_text = tile(label, b.counts[kind], HELP[kind])
                st.metric(label, value, delta=_delta(b.delta(kind)) if shown else None, delta_color="off",
                          delta_arrow=arrow, help=help_text)  # fmt: skip
                st.page_link(
                    "views/triage/failures.py",
                    label="List them" if b.counts[kind] else "Nothing to list",
                    icon=ICONS[kind],
                    query_params={**filter_params(f), "changed": kind, "since": stamp(since)},
                    disabled=not b.counts[kind],
                )
        _nightly_line(store, now)
        st.page_link(
            "views/triage/incidents.py",
            label="The root causes behind the open correctable items, with the re-runs each needs: Incidents",
            icon=":material/crisis_alert:",
            query_params=filter_params(f),
        )
        _rerun_line(store, f, now)
        if len(b.settled_by):
            who = ", ".join(f"**{md(r.who)}** {fmt_int(int(r['items']))} {str(r.status).lower()}"
                            for _, r in b.settled_by.iterrows())  # fmt: skip
            st.caption(f":material/task_alt: Settled by {who}.")
        if len(b.reclassified):
            moves = ", ".join(f"{md(r['from'])} → {md(r.to)} {fmt_int(int(r['items']))}"
                              for _, r in b.reclassified.head(6).iterrows())  # fmt: skip
            more = len(b.reclassified) - 6
            st.caption(f":material/swap_horiz: Verdicts changed: {moves}" + (f" and {more} more moves." if more > 0
                                                                              else "."))  # fmt: skip
            _classified_line(store, since)
    return b


#: The latest classification runs named under the verdicts that changed.
RUNS_SHOWN = 4
#: Who ran a classification, by the operations log's origin.
_ORIGINS = {"dashboard": "from the dashboard", "cli": "from the command line"}


def _classified_line(store: Store, since: dt.datetime) -> None:
    """The classification runs of the period (from the operations log), under the verdicts that changed: every
    verdict change has a run behind it, and on a fresh demo the dashboard's own first judgement of every item is most
    of them. A run is of the period if it finished in it, or started in it and has not said that it finished."""
    ops = data.recent_operations(store)
    if ops.empty:
        return
    started = pd.to_datetime(ops["started_at"], utc=True)
    finished = pd.to_datetime(ops["finished_at"], utc=True)
    after = pd.Timestamp(since)
    classified = ops["kind"].isin(("classify", "reclassify"))
    runs = ops[classified & ((finished >= after) | (finished.isna() & (started >= after)))]
    if runs.empty:
        return
    parts = []
    latest = runs.assign(_start=started[runs.index], _end=finished[runs.index]).sort_values("_start")
    for _, run in latest.tail(RUNS_SHOWN).iterrows():
        if pd.isna(run["_end"]):
            at = f"started {run['_start']:%b %d, %H:%M} UTC, not finished"
        else:
            at = f"{run['_end']:%b %d, %H:%M} UTC" + ("" if run["outcome"] == "done" else f", {md(run['outcome'])}")
        what = "re-classification" if run["kind"] == "reclassify" else "classification"
        origin = str(run["origin"])
        if origin == FIRST_START:
            parts.append(f"the dashboard's first start ({at}), which judged every item of the demo once: the "
                         "pipeline's own verdicts are kept beside ours")  # fmt: skip
        elif origin == "nightly":
            parts.append(f"the nightly job's {what} ({at})")
        else:
            parts.append(f"a {what} by {md(run['actor'])} {_ORIGINS.get(origin, 'via ' + md(origin))} ({at})")
    earlier = len(latest) - RUNS_SHOWN
    more = f" (and {fmt_int(earlier)} earlier)" if earlier > 0 else ""
    st.caption(f":material/history: Classification runs in this period{more}: " + "; ".join(parts) + ".")


def _rerun_line(store: Store, f: Filters, now: dt.datetime) -> None:
    """Where the re-run requests of the view stand: pending and stale ones need a look, settled ones close the loop."""
    asked = data.rerun_requests(store, f, now=now)
    if asked.empty:
        return
    counts = asked["state"].value_counts()
    order = ("stale", "still failing", "failed", "pending", "running", "run seen")
    parts = [f"{fmt_int(int(counts[s]))} {s}" for s in order if s in counts]
    if "settled" in counts:
        hours = reruns.settle_hours(asked)
        median = f", median {fmt_hours(hours['median'])} from request to settlement" if hours["timed"] else ""
        parts.append(f"{fmt_int(int(counts['settled']))} settled by re-run{median}")
    icon = ":material/warning:" if any(s in counts for s in ("stale", "still failing", "failed")) else ":material/send:"
    st.caption(f"{icon} Re-run requests: {', '.join(parts)} (the Incidents page follows each to its settlement).")


#: A nightly job older than this is reported as late.
LATE_AFTER = dt.timedelta(hours=36)


def _nightly_line(store: Store, now: dt.datetime) -> None:
    """When the nightly job last ran and how it ended: the team should know if the overnight work happened."""
    last = data.last_nightly(store)
    if last is None:
        st.caption(
            ":material/schedule: No nightly job has run on this data yet: schedule `python -m lib nightly` "
            "(README, *The nightly job*) to classify, auto-resolve and sync after the pipeline's runs."
        )
        return
    if pd.isna(last["finished_at"]):  # its start is logged, its end is not: still running, or stopped half way
        started = last["started_at"].to_pydatetime().astimezone(dt.UTC)
        ago = _span(max(now - started, dt.timedelta(0)))
        st.warning(f"The last nightly job started {started:%a %b %d, %H:%M} UTC ({ago} ago) and has not said that it "
                   "ended: it is still running, or it was stopped half way (what it finished is kept; run it again).",
                   icon=":material/hourglass_top:")  # fmt: skip
        return
    finished = last["finished_at"].to_pydatetime().astimezone(dt.UTC)
    ago = _span(max(now - finished, dt.timedelta(0)))
    said = f"Last nightly job {finished:%a %b %d, %H:%M} UTC ({ago} ago): **{md(last['outcome'])}**"
    detail = md(str(last["summary"] or "")[:300])
    if last["outcome"] != "done":
        st.warning(f"{said}. {detail}", icon=":material/error:")
    elif now - finished > LATE_AFTER:
        st.warning(f"{said}; it has not run since. {detail}", icon=":material/schedule:")
    else:
        st.caption(f":material/schedule: {said}. {detail}")


def _span(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{delta.total_seconds() / 60:.0f} minutes"
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"


def filter_params(f: Filters) -> dict[str, str]:
    """The sidebar's URL parameters for a filter (what a link must carry to keep the view)."""
    out: dict[str, str] = {}
    if f.date_from:
        out["from"] = f.date_from.isoformat()
    if f.date_to:
        out["to"] = f.date_to.isoformat()
    for key, values in (("table", f.tables), ("processor", f.processors), ("category", f.categories),
                        ("type", f.failure_types), ("correctable", f.correctable), ("status", f.statuses)):  # fmt: skip
        if values:
            out[key] = ",".join(values)
    if f.entity:
        out["entity"] = f.entity
    if not f.hide_expected:
        out["hide_expected"] = "false"
    if f.disagree:
        out["disagree"] = "true"
    return out


def changed_filter() -> tuple[str, dt.datetime] | str | None:
    """The failure list's ``changed`` and ``since`` URL parameters: (kind, instant), None, or why they are unusable."""
    kind = (st.query_params.get("changed") or "").strip()
    raw = (st.query_params.get("since") or "").strip()
    if not kind and not raw:
        return None
    if kind not in CHANGE_KINDS:
        return f"`changed` = “{md(kind[:60])}” is not one of {', '.join(CHANGE_KINDS)}"
    try:
        return kind, parse_instant(raw)
    except ValueError as exc:
        return f"`since`: {md(str(exc))}"


def clear_changed() -> None:
    for key in ("changed", "since"):
        if key in st.query_params:
            del st.query_params[key]
