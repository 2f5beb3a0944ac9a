"""Settling: how the backlog is ageing and how fast failures get settled, week by week."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib import incidents as inc
from lib import reruns
from lib.errors import TriageError
from ui import context, data, filters
from ui.widgets import ITEM_COLUMN_CONFIG, blank_nulls, fmt_hours, fmt_int, md, processor_short

store = context.get_store()
f = filters.current()
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)

st.title("Settling")
st.caption(md(filters.describe(f)) + " · the status filter does not apply here")
s = context.guarded(lambda: data.settling_metrics(store, f, now=now))

weeks = s.by_week
WEEK_MS = 7 * 24 * 3600 * 1000
#: Hours, or days when settling takes longer than a few days: the unit people think in.
unit, per = ("days", 24.0) if (weeks["p90_hours"].max() if len(weeks) else 0) > 96 else ("hours", 1.0)


def _week_axis(fig: go.Figure, title: str | None = None) -> None:
    """Weekly ticks (a single week would otherwise get sub-second ones)."""
    first = pd.Timestamp(weeks["week"].min()) - pd.Timedelta(days=4)
    last = pd.Timestamp(weeks["week"].max()) + pd.Timedelta(days=4)
    span = (last - first).days // 7 + 1
    step = max(1, -(-span // 14))  # at most about 14 ticks, however long the span
    fmt = "%b %d" if span <= 52 else "%b %Y"
    monday = pd.Timestamp(weeks["week"].min())  # ticks on the weeks' Mondays, as the table's "Week of"
    fig.update_xaxes(type="date", tickformat=fmt, dtick=WEEK_MS * step, range=[first, last], title=title,
                     tick0=monday)  # fmt: skip


settled_total = int(weeks["settled"].sum()) if len(weeks) else 0
auto_total = int(weeks["auto_settled"].sum()) if len(weeks) else 0
open_total = int(s.backlog["items"].sum())
tiles = st.columns(4)
tiles[0].metric("Open items", fmt_int(open_total), help="UNRESOLVED, INVESTIGATING or REGRESSED", border=True)
oldest = s.oldest["first_seen"].dropna().min() if len(s.oldest) else None
tiles[1].metric(
    "Oldest open",
    f"{(now - pd.Timestamp(oldest).to_pydatetime()).days:,} days" if oldest is not None and pd.notna(oldest) else "–",
    help="Since a run first recorded the oldest open item",
    border=True,
)
tiles[2].metric(
    "Settled", fmt_int(settled_total), help="Settlements (to RESOLVED or PERMANENT) in the range", border=True
)
tiles[3].metric(
    "Auto-resolved share",
    f"{auto_total / settled_total:.0%}" if settled_total else "–",
    help="Settlements the nightly auto-resolve made, of all settlements",
    border=True,
)

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Open backlog by age")
    fig = go.Figure(
        go.Bar(
            x=s.backlog["age"],
            y=s.backlog["items"],
            marker_color=["#9cc9a8", "#c7d98b", "#f2d272", "#f5a85b", "#e0683a", "#a8321a", "#999999"][
                : len(s.backlog)
            ],
            text=[fmt_int(int(v)) for v in s.backlog["items"]],
            textposition="outside",
            hovertemplate="%{x}: %{y:,} open items<extra></extra>",
        )
    )
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 20, "b": 10}, yaxis={"title": "open items"},
                      plot_bgcolor="white", dragmode=False)  # fmt: skip
    st.plotly_chart(fig, key="settling_age", config={"displayModeBar": False})
    st.caption("Age: time since a run first recorded the item.")

with right:
    st.subheader("Time to settle, per week")
    if weeks["median_hours"].notna().any():
        fig = go.Figure()
        timed = weeks.dropna(subset=["median_hours"])
        fig.add_scatter(x=timed["week"], y=timed["median_hours"] / per, name="median", mode="lines+markers",
                        line={"color": "#2f6db5"}, hovertemplate="week of %{x|%b %d}: %{y:.1f} " + unit)  # fmt: skip
        fig.add_scatter(x=timed["week"], y=timed["p90_hours"] / per, name="90th percentile", mode="lines+markers",
                        line={"color": "#c43c0f", "dash": "dot"},
                        hovertemplate="week of %{x|%b %d}: %{y:.1f} " + unit)  # fmt: skip
        fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 20, "b": 10}, yaxis={"title": unit,
                          "rangemode": "tozero"}, legend={"orientation": "h", "y": 1.1}, plot_bgcolor="white",
                          dragmode=False)  # fmt: skip
        _week_axis(fig)
        st.plotly_chart(fig, key="settling_time", config={"displayModeBar": False})
        st.caption("From when an item became open (first recorded, or reopened) to RESOLVED or PERMANENT.")
    else:
        st.info("Nothing was settled in this range yet.", icon=":material/hourglass_empty:")

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Settled per week, and the auto-resolved share")
    if len(weeks) and settled_total:
        fig = go.Figure()
        fig.add_bar(x=weeks["week"], y=weeks["settled"] - weeks["auto_settled"], name="by people",
                    marker_color="#2f6db5")  # fmt: skip
        fig.add_bar(x=weeks["week"], y=weeks["auto_settled"], name="auto-resolved", marker_color="#9cc9a8")
        fig.update_layout(barmode="stack", height=280, margin={"l": 10, "r": 10, "t": 20, "b": 10},
                          legend={"orientation": "h", "y": 1.1}, plot_bgcolor="white", dragmode=False)  # fmt: skip
        _week_axis(fig)
        st.plotly_chart(fig, key="settling_weekly", config={"displayModeBar": False})
    else:
        st.caption("No settlements in this range.")
with right:
    st.subheader("Regressions per week")
    if len(weeks) and int(weeks["regressions"].sum()):
        fig = go.Figure(go.Bar(x=weeks["week"], y=weeks["regressions"], marker_color="#e0683a",
                               hovertemplate="week of %{x|%Y-%m-%d}: %{y:,} regressions<extra></extra>"))  # fmt: skip
        fig.update_layout(height=280, margin={"l": 10, "r": 10, "t": 20, "b": 10}, plot_bgcolor="white",
                          dragmode=False, yaxis={"tickformat": ",d", "rangemode": "tozero",
                                                 "dtick": max(1, int(weeks["regressions"].max()) // 5)})  # fmt: skip
        _week_axis(fig)
        st.plotly_chart(fig, key="settling_regressions", config={"displayModeBar": False})
        st.caption("A regression: a resolved item recorded again by a run before anyone decided on it again.")
    else:
        st.caption("No regressions in this range.")


def _labels(requests: pd.DataFrame) -> list[str]:
    """One distinct line per request: when, and what it was for (the incident's cause and subject)."""
    out: list[str] = []
    for at, incident_id in zip(requests["at"], requests["incident_id"], strict=True):
        what = "processor run"
        if isinstance(incident_id, str) and incident_id:
            try:
                which = inc.IncidentId.parse(incident_id)
                subject = which.subject if which.kind != inc.RUN else processor_short(which.subject)
                day = f"{which.run_date:%b %d}" if which.run_date else ""
                what = " ".join(x for x in (inc.KIND_SHORT[which.kind], subject, which.team, day) if x)
            except TriageError:
                what = incident_id[:40]
        label = f"{pd.Timestamp(at):%b %d %H:%M} · {what}"
        while label in out:
            label += " ·"
        out.append(label)
    return out


st.subheader("Re-run requests: from request to settlement")
asked = context.guarded(lambda: data.rerun_requests(store, f, now=now))
#: How a request's state reads here: done, under way, or needing someone.
STATE_GROUPS = {"settled": ("settled", "#3a8f5c"), "stale": ("needs a look", "#c43c0f"),
                "still failing": ("needs a look", "#c43c0f"), "failed": ("needs a look", "#c43c0f")}  # fmt: skip
if asked.empty:
    st.caption("No re-run was requested for the items of this range: request one from an incident (*Incidents*).")
else:
    hours = reruns.settle_hours(asked)
    groups = asked["state"].map(lambda x: STATE_GROUPS.get(str(x), ("under way", "#2f6db5"))[0])
    cells = st.columns(4)
    cells[0].metric("Requests", fmt_int(len(asked)), help="Re-run requests for the items of this range", border=True)
    cells[1].metric("Settled by re-run", fmt_int(hours["settled"]), border=True,
                    help="None of the items it asked for waits any more: settled, or its cause is gone")  # fmt: skip
    cells[2].metric(
        "Median to settle",
        fmt_hours(hours["median"]),
        help="From the request to the settlement of the last of its items that were settled (nearest rank over "
        f"{fmt_int(hours['timed'])} timed requests; 90th percentile {fmt_hours(hours['p90'])})",
        border=True,
    )
    cells[3].metric("Need a look", fmt_int(int((groups == "needs a look").sum())), border=True,
                    help="Stale (no run in time), still failing after the run, or never sent")  # fmt: skip
    recent = asked.head(25).iloc[::-1]
    waited = [  # a settled request without a time of its own has no bar
        h
        if pd.notna(h)
        else None
        if s_ == "settled"
        else (now - pd.Timestamp(a).to_pydatetime()).total_seconds() / 3600
        for h, a, s_ in zip(recent["hours_to_settle"], recent["at"], recent["state"], strict=True)
    ]
    longest = max((w for w in waited if w is not None), default=0.0)
    r_unit, r_per = ("days", 24.0) if longest > 96 else ("hours", 1.0) if longest > 2 else ("minutes", 1 / 60)
    elapsed = [None if w is None else w / r_per for w in waited]
    names = _labels(recent)
    fig = go.Figure()
    for group, colour in (("settled", "#3a8f5c"), ("under way", "#2f6db5"), ("needs a look", "#c43c0f")):
        mask = [g == group for g in groups.loc[recent.index]]
        if not any(mask):
            continue
        ys = [n for n, m in zip(names, mask, strict=True) if m]
        fig.add_bar(
            y=ys, x=[e for e, m in zip(elapsed, mask, strict=True) if m],
            orientation="h", name=group, marker_color=colour,
            customdata=[[st_, str(w), str(nt)[:80]] for st_, w, nt, m in
                        zip(recent["state"], recent["actor"], recent["note"], mask, strict=True) if m],
            hovertemplate="%{y}<br>%{customdata[0]} · asked by %{customdata[1]}<br>%{customdata[2]}<br>%{x:.1f} "
            + r_unit + "<extra></extra>",
        )  # fmt: skip
    fig.update_layout(height=120 + 24 * len(recent), margin={"l": 10, "r": 10, "t": 40, "b": 50}, barmode="overlay",
                      xaxis={"title": f"{r_unit}: to settle, or waiting so far", "rangemode": "tozero"},
                      yaxis={"categoryorder": "array", "categoryarray": names},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      plot_bgcolor="white", dragmode=False)  # fmt: skip
    st.plotly_chart(fig, key="settling_reruns", config={"displayModeBar": False})
    st.caption(
        (f"The latest {len(recent)} requests, newest on top" if len(recent) > 1 else "The request")
        + ": settled ones by the time from the request to their last settled item's settlement, the others by the "
        "time they have waited. The Incidents page follows each one."
    )

st.subheader("The numbers")
tab_week, tab_proc, tab_oldest = st.tabs(["Per week", "Per week, processor and failure type", "Oldest open items"])
labels = {
    "week": st.column_config.DateColumn("Week of", format="YYYY-MM-DD"),
    "processor_name": st.column_config.TextColumn("Processor"),
    "failure_type": st.column_config.TextColumn("Failure type"),
    "settled": st.column_config.NumberColumn("Settled"),
    "auto_settled": st.column_config.NumberColumn("Auto-resolved"),
    "auto_share": st.column_config.NumberColumn("Auto share", format="%.0f%%"),
    # The same unit as the chart above (days once the slowest week passes four days, hours below).
    "median_hours": st.column_config.NumberColumn(f"Median ({unit})", format="%.1f"),
    "p90_hours": st.column_config.NumberColumn(f"90th pct ({unit})", format="%.1f"),
    "regressions": st.column_config.NumberColumn("Regressions"),
}


def _in_unit(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: times in the chart's unit, the auto share in percent (the CSV keeps hours and 0-1)."""
    out = frame.copy()
    for column in ("median_hours", "p90_hours"):
        if column in out:
            out[column] = out[column] / per
    if "auto_share" in out:
        out["auto_share"] = out["auto_share"] * 100
    return out


with tab_week:
    st.dataframe(_in_unit(weeks), hide_index=True, key="settling_week_table", column_config=labels)
    st.download_button("Download CSV", data.csv_bytes([weeks], list(weeks.columns)), "settling-per-week.csv",
                       "text/csv", key="settling_week_csv", icon=":material/download:")  # fmt: skip
with tab_proc:
    table = s.by_processor
    st.dataframe(_in_unit(table), hide_index=True, key="settling_processor_table", column_config=labels)
    st.download_button("Download CSV", data.csv_bytes([table], list(table.columns)), "settling-per-processor.csv",
                       "text/csv", key="settling_processor_csv", icon=":material/download:")  # fmt: skip
with tab_oldest:
    columns = ["item_date", "processor_name", "entity_id", "status", "failure_type", "first_seen", "last_seen"]
    st.dataframe(blank_nulls(s.oldest[columns]), hide_index=True, key="settling_oldest",
                 column_config={k: v for k, v in ITEM_COLUMN_CONFIG.items() if k in columns})  # fmt: skip
    st.caption(f"The {len(s.oldest)} open items first recorded longest ago.")
