"""Player: why is this player failing? His season game by game, his failure items, their evidence."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib import resolution
from lib.model import OPEN_STATUSES, ItemKey
from ui import context, data, filters, identity, resolve
from ui import item as item_panel
from ui.widgets import ITEM_COLUMN_CONFIG, TYPE_COLOURS, blank_nulls, fmt_int, kpi_row, md, processor_short

K_PLAYER = "player"  # query parameter: ?player=isaiahthompson
K_SEARCH, K_TABLE, K_SHOWN = "player_search", "player_items", "player_shown_keys"

OUTCOME_COLOURS = {
    "PLAYED": "#5cb85c",
    "PLAYER_DNP": "#7f8c9d",
    "NOT_IN_BOXSCORE": "#c7ccd3",
    "NOT_WITH_TEAM_YET": "#e6e9ed",
    "RAW_DATA_GAP": "#d9534f",
    "ANALYTICS_GAP": "#f0ad4e",
    "NAME_UNRESOLVED": "#8e44ad",
}
OUTCOME_LABEL = {
    "PLAYED": "played",
    "PLAYER_DNP": "did not play",
    "NOT_IN_BOXSCORE": "not in the box score",
    "NOT_WITH_TEAM_YET": "not with the team yet",
    "RAW_DATA_GAP": "raw data gap",
    "ANALYTICS_GAP": "analytics gap",
    "NAME_UNRESOLVED": "name unresolved",
}

store = context.get_store()
f = filters.current()
actor = identity.current_actor()
resolve.show_toast()
bounds = context.guarded(lambda: data.bounds(store))
season_start, season_end = bounds.first_date, bounds.last_date

st.title("Player")
lookup = str(st.query_params.get(K_PLAYER, "") or "").strip()[:100]

text = st.text_input(
    "Find a player", key=K_SEARCH, placeholder="name or lookup, e.g. isaiah or isaiahthompson", max_chars=100
)
if text and season_start and season_end:
    found = context.guarded(lambda: data.player_search(store, text, season_start, season_end))
    if found.empty:
        st.caption("No player matches.")
    else:
        cols = st.columns(4)
        for i, row in enumerate(found.itertuples(index=False)):
            if cols[i % 4].button(f"{row.player_name} · {row.team}", key=f"player_pick_{row.player_lookup}",
                                  width="stretch"):  # fmt: skip
                st.query_params[K_PLAYER] = row.player_lookup
                st.rerun()

if not lookup:
    st.info("Find a player above, or open one from the failure list or the patterns page.", icon=":material/person:")
    st.stop()
if not (season_start and season_end):
    st.info("No failure data yet.")
    st.stop()

season = context.guarded(lambda: data.player_season(store, lookup, season_start, season_end))
# His items over every date by default (the strip and the cards cover the whole history too); the sidebar's range
# is one click away. The sidebar's other filters (status, type, processor...) do not apply: his page is every item of
# his, of every table and status, expected ones included (lib/players.py), and its caption says so.
whole = replace(f, date_from=season_start, date_to=season_end)
all_items = context.guarded(lambda: data.player_items(store, lookup, whole))
in_range = context.guarded(lambda: data.player_items(store, lookup, f))
st.subheader(md(lookup))
with_team = season[season["outcome"] != "NOT_WITH_TEAM_YET"] if len(season) else season
teams = " → ".join(dict.fromkeys(with_team["team"])) if len(with_team) else "no team found in the box scores"
scope = st.segmented_control(
    "His failure items",
    ["all", "range"],
    default="all",
    key="player_item_range",
    format_func=lambda v: f"Every date ({len(all_items):,})" if v == "all"
    else f"Sidebar range, {f.date_from} to {f.date_to} ({len(in_range):,})",
)  # fmt: skip
items = in_range if scope == "range" else all_items
dated = f"{f.date_from} to {f.date_to} (the sidebar's range)" if scope == "range" else f"{season_start} to {season_end}"
st.caption(f"Teams: {md(teams)} · games and items dated {season_start} to {season_end}"
           + (f"; the items below: {dated}" if scope == "range" else "")
           + " · every item of his, whatever the sidebar's status, type or processor")  # fmt: skip

outcomes = season["outcome"].value_counts() if len(season) else pd.Series(dtype=int)
open_items = items[items["status"].isin(OPEN_STATUSES)] if len(items) else items
kpi_row(
    [
        (
            "Team games",
            fmt_int(len(with_team)),
            "Final games of his team(s): each date's team is that of his nearest appearance at or before it this "
            "season (before his first appearance: the team he first appears with). Not counted: "
            f"{fmt_int(len(season) - len(with_team))} games of a team he was about to join, absent from its box "
            "score (on the strip as 'not with the team yet'; such a game whose box score is missing shows, and "
            "counts, as the gap an item after his arrival would count)",
        ),
        ("Played", fmt_int(int(outcomes.get("PLAYED", 0))), "Games with an analytics row not flagged is_dnp"),
        (
            "Did not play",
            fmt_int(int(outcomes.get("PLAYER_DNP", 0) + outcomes.get("NOT_IN_BOXSCORE", 0))),
            "Listed dnp / inactive, or absent from a present box score of his team",
        ),
        (
            "Data gaps",
            fmt_int(
                int(
                    outcomes.get("RAW_DATA_GAP", 0)
                    + outcomes.get("ANALYTICS_GAP", 0)
                    + outcomes.get("NAME_UNRESOLVED", 0)
                )
            ),
            "Games missing because data is missing",
        ),
        ("Failure items", fmt_int(len(items)), f"His items dated {dated}, expected ones included"),
        ("Open", fmt_int(len(open_items)), "UNRESOLVED, INVESTIGATING or REGRESSED"),
    ]
)

st.markdown("**His team's season, game by game**")
if season.empty:
    st.caption("No box score or analytics row of this player: his team cannot be placed.")
else:
    fig = go.Figure()
    for outcome, colour in OUTCOME_COLOURS.items():
        part = season[season["outcome"] == outcome]
        if part.empty:
            continue
        fig.add_scatter(
            x=pd.to_datetime(part["game_date"]),
            y=part["team"],
            mode="markers",
            name=OUTCOME_LABEL[outcome],
            marker={"symbol": "square", "size": 13, "color": colour},
            customdata=part[["opponent", "reason", "game_id"]].fillna("").to_numpy(),
            hovertemplate="%{x|%a %Y-%m-%d} vs %{customdata[0]}<br>" + OUTCOME_LABEL[outcome]
            + "<br>%{customdata[1]}<br>%{customdata[2]}<extra></extra>",
        )  # fmt: skip
    for start_, end_ in ((f.date_from, f.date_to),):
        if start_ and end_:
            fig.add_vrect(x0=pd.Timestamp(start_), x1=pd.Timestamp(end_), fillcolor="#c43c0f", opacity=0.05,
                          line_width=0)  # fmt: skip
    fig.update_layout(height=120 + 40 * season["team"].nunique(), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.25, "x": 0}, plot_bgcolor="white", dragmode=False)  # fmt: skip
    st.plotly_chart(fig, key="player_season_chart", config={"displayModeBar": False})
    reasons = season[season["reason"].notna()]["reason"].value_counts().head(6)
    if len(reasons):
        st.caption("Reasons in the box score: " + " · ".join(f"{md(r)} ({n})" for r, n in reasons.items()))

st.markdown("**His failure items over time**")
if items.empty:
    st.caption(f"No failure item of this player dated {dated}.")
else:
    fig = go.Figure()
    for failure_type in sorted(set(items["failure_type"])):
        part = items[items["failure_type"] == failure_type]
        fig.add_scatter(
            x=pd.to_datetime(part["item_date"]),
            y=part["processor_name"],
            mode="markers",
            name=failure_type,
            marker={
                "size": 10,
                "color": TYPE_COLOURS.get(failure_type, "#999999"),
                "symbol": [
                    "diamond" if s == "PERMANENT" else "circle-open" if s == "RESOLVED" else "circle"
                    for s in part["status"]
                ],
            },
            customdata=part[["status", "failure_category"]].to_numpy(),
            hovertemplate="%{x|%Y-%m-%d} · %{y}<br>"
            + failure_type
            + " · %{customdata[1]}<br>status %{customdata[0]}<extra></extra>",
        )
    fig.update_layout(height=140 + 34 * items["processor_name"].nunique(), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.2, "x": 0}, plot_bgcolor="white", dragmode=False)  # fmt: skip
    days = pd.to_datetime(items["item_date"])
    # Dates, never times (one item alone would otherwise get an axis of hours around midnight).
    fig.update_xaxes(type="date", tickformat="%b %d\n%Y", range=[days.min() - pd.Timedelta(days=4),
                                                                  days.max() + pd.Timedelta(days=4)])  # fmt: skip
    st.plotly_chart(fig, key="player_items_chart", config={"displayModeBar": False})
    st.caption("Filled diamond: PERMANENT · open circle: RESOLVED · dot: open.")

    shown_keys = list(items["key"])
    table = resolve.table_key(K_TABLE, shown_keys)  # other rows, another table: no selection carried over
    notice = st.empty()
    event = st.dataframe(
        blank_nulls(items.assign(processor_short=[processor_short(p) for p in items["processor_name"]])),
        hide_index=True,
        key=table,
        on_select="rerun",
        selection_mode="multi-row",
        column_order=(
            "item_date",
            "processor_short",
            "failure_type",
            "is_correctable",
            "status",
            "failure_category",
            "expected_count",
            "actual_count",
            "missing_json",
            "occurrences",
            "processor_name",
        ),
        column_config=ITEM_COLUMN_CONFIG,
        height=min(38 + 35 * len(items), 420),
    )
    selected = resolve.selected_keys(event, shown_keys, table, K_SHOWN, view=(lookup, scope, f), notice=notice)
    act_on = st.segmented_control(
        "Act on", ["selected", "all"], default="selected", key="player_act_on",
        format_func=lambda v: f"Selected ({len(selected)})" if v == "selected" else f"All {len(items)} of his items",
    )  # fmt: skip
    chosen = selected if act_on == "selected" else shown_keys
    if act_on == "selected" and len(selected) == 1:
        st.caption(":material/arrow_downward: The selected item's actions are in its panel below.")
    else:
        resolve.buttons(
            store,
            lambda: resolution.Scope.of_keys(chosen),
            actor,
            key=f"player_{act_on}",
            what=f"the selected items of {lookup}" if act_on == "selected" else f"{lookup}'s items",
            disabled=not chosen,
            label=f"{fmt_int(len(chosen))} selected" if act_on == "selected" else f"All {len(chosen)}",
        )
    if len(selected) == 1:
        key = ItemKey.parse(selected[0])
        detail = context.guarded(lambda: data.item(store, key))
        if detail is not None:
            item_panel.render(store, detail, key, actor)

resolve.render_pending(store)
