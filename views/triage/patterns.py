"""Patterns: the uncorrectable did-not-play failures, at a glance, and settling them in one step."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib import resolution
from lib.model import ResolutionStatus
from ui import context, data, filters, identity, resolve
from ui.widgets import ITEM_COLUMN_CONFIG, fmt_int, md, processor_short

K_HEATMAP, K_CELL = "patterns_heatmap", "patterns_cell"
REASON_COLOURS = {
    "coach's decision": "#9aa5b1",
    "injury / illness": "#d9534f",
    "health and safety protocols": "#8e44ad",
    "rest": "#5bc0de",
    "not with team": "#f0ad4e",
    "suspension": "#34495e",
    "G League / two-way": "#b8c4d6",
    "not listed (inactive, omitted)": "#dfe3e8",
    "other": "#777777",
}

store = context.get_store()
f = filters.current()
actor = identity.current_actor()
resolve.show_toast()
open_dnp = resolution.dnp_scope(f)

st.title("Did-not-play patterns")
st.caption(
    "Failures that nothing can fix: the player did not play. Built from the classifier's game-by-game verdicts; "
    "classify the date range first (Overview) if these are empty. " + md(filters.describe(f))
)


def _cell_clicked() -> None:
    points = st.session_state.get(K_HEATMAP, {}).get("selection", {}).get("points", [])
    if points:
        st.session_state[K_CELL] = (str(points[0]["y"]), str(points[0]["x"])[:10])


st.subheader("Teams × dates: open did-not-play items")
grid = context.guarded(lambda: data.view(store, "team_dates", open_dnp.filters))
if grid.empty:
    st.info("No open PLAYER_DNP item in this range.", icon=":material/check_circle:")
else:
    fig = go.Figure(
        go.Scatter(
            x=pd.to_datetime(grid["item_date"]),
            y=grid["team"],
            mode="markers",
            marker={
                "symbol": "square",
                "size": 9,
                "color": grid["players"],
                "colorscale": "Reds",
                "cmin": 0,
                "showscale": True,
                "colorbar": {"title": "players", "thickness": 10},
            },
            customdata=grid[["players", "items"]].to_numpy(),
            hovertemplate="%{y} · %{x|%Y-%m-%d}<br>%{customdata[0]} players, %{customdata[1]} items"
            "<extra>click to settle</extra>",
        )
    )
    fig.update_layout(
        height=max(360, 16 * grid["team"].nunique() + 80),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"categoryorder": "category descending"},
        plot_bgcolor="white",
        dragmode=False,
    )
    st.plotly_chart(
        fig, key=K_HEATMAP, on_select=_cell_clicked, selection_mode="points", config={"displayModeBar": False}
    )
    st.caption("A league-wide wave shows as a dark band across teams. Click a cell to settle its items.")
    cell = st.session_state.get(K_CELL)
    if cell and resolve.can_act(actor):
        team, day = cell[0], dt.date.fromisoformat(cell[1])
        keys = context.guarded(lambda: data.cell_keys(store, open_dnp.filters, team, day))
        st.markdown(f"**{md(team)} on {day}**: {fmt_int(len(keys))} open did-not-play item(s).")
        if keys and st.button(
            f"Mark these {len(keys)} items permanent", key="patterns_cell_permanent", icon=":material/block:"
        ):
            assert actor is not None
            resolve.ask(
                resolution.Scope.of_keys(keys),
                ResolutionStatus.PERMANENT,
                actor,
                f"open PLAYER_DNP items of {team} on {day}",
            )
    elif cell:
        resolve.explain_cannot_act(actor)

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Why they did not play")
    reasons = context.guarded(lambda: data.view(store, "reasons", f))
    if reasons.empty:
        st.caption("No permanent missing game in this range yet.")
    else:
        fig = go.Figure()
        shown = {str(v) for v in reasons["reason"].dropna().unique()}
        for reason in [r for r in REASON_COLOURS if r in shown]:
            part = reasons[reasons["reason"] == reason]
            fig.add_bar(
                x=pd.to_datetime(part["week"]), y=part["games"], name=reason, marker_color=REASON_COLOURS[reason]
            )
        fig.update_layout(
            barmode="stack",
            height=330,
            margin={"l": 10, "r": 10, "t": 10, "b": 10},
            legend={"orientation": "h", "y": -0.2},
            yaxis={"title": "missed games per week"},
            dragmode=False,
        )
        st.plotly_chart(fig, key="patterns_reasons", config={"displayModeBar": False})
with right:
    st.subheader("Permanent share per processor")
    share = context.guarded(lambda: data.permanent_share(store, f))
    st.dataframe(
        share.assign(processor_short=[processor_short(p) for p in share["processor_name"]]),
        hide_index=True,
        key="patterns_share",
        column_order=("processor_short", "classified", "permanent", "share"),
        column_config={
            "processor_short": ITEM_COLUMN_CONFIG["processor_short"],
            "classified": st.column_config.NumberColumn("Judged", help="Items with a verdict", width=70),
            "permanent": st.column_config.NumberColumn("Perm.", help="Of them, PLAYER_DNP: permanent", width=70),
            "share": st.column_config.ProgressColumn(
                "Share", format="percent", min_value=0.0, max_value=1.0, width=110
            ),
        },
    )

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Longest did-not-play streaks")
    runs = context.guarded(lambda: data.view(store, "streaks", f))
    if runs.empty:
        st.caption("No streak in this range.")
    else:
        runs = runs.assign(player_page="/player?player=" + runs["player"])
        st.dataframe(
            runs,
            hide_index=True,
            key="patterns_streaks",
            column_order=("player_page", "team", "games", "first_date", "last_date", "a_reason"),
            column_config={
                "player_page": st.column_config.LinkColumn("Player", display_text=r"player=(.*)$", width=130),
                "team": st.column_config.TextColumn("Team", width=50),
                "games": st.column_config.NumberColumn("Games", help="Games in a row he did not play", width=60),
                "first_date": st.column_config.DateColumn("From", format="MMM D", width=62),
                "last_date": st.column_config.DateColumn("To", format="MMM D", width=62),
                "a_reason": st.column_config.TextColumn("A reason given", width="medium"),
            },
        )
        top = runs.iloc[0]
        if resolve.can_act(actor) and st.button(
            f"Mark {top['player']}'s streak permanent",
            key="patterns_streak_permanent",
            icon=":material/block:",
            help=f"His open did-not-play items from {top['first_date']} to {top['last_date']}, the longest streak",
        ):
            assert actor is not None
            scope = resolution.streak_scope(f, str(top["player"]), top["first_date"], top["last_date"])
            resolve.ask(scope, ResolutionStatus.PERMANENT, actor, f"{top['player']}'s streak")
with right:
    st.subheader("Dates with mass failures")
    mass = context.guarded(lambda: data.mass_dates(store, f))
    st.dataframe(
        mass,
        hide_index=True,
        key="patterns_mass",
        column_config={
            "item_date": st.column_config.DateColumn("Date", width=96),
            "items": st.column_config.NumberColumn("All items", width=80),
            "dnp_items": st.column_config.NumberColumn("Did not play", help="Did-not-play items", width=95),
        },
    )
    if len(mass) and resolve.can_act(actor):
        day = st.selectbox("Settle a date", list(mass["item_date"]), key="patterns_mass_day")
        if st.button("Mark its did-not-play items permanent", key="patterns_mass_permanent", icon=":material/block:",
                     help="Every open PLAYER_DNP item of the date chosen above"):  # fmt: skip
            assert actor is not None
            resolve.ask(
                resolution.Scope(open_dnp.filters.with_(date_from=day, date_to=day)),
                ResolutionStatus.PERMANENT,
                actor,
                f"open PLAYER_DNP items of {day}",
            )

resolve.render_pending(store)
