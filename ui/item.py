"""The panel of one failure item, shared by the failure list and the player page."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib import resolution
from lib.model import UNCLASSIFIED, Actor, ItemKey
from lib.store import Store
from ui import context, data, resolve
from ui.widgets import fmt_int, md

VERDICT_HELP = {
    "PLAYER_DNP": "listed dnp / inactive or without minutes (permanent)",
    "NOT_IN_BOXSCORE": "his side's box score is there, he is not in it: not listed (permanent)",
    "NOT_WITH_TEAM_YET": "a game of the team he joined, before his first game for it: he was not with the team "
    "yet (permanent)",
    "RAW_DATA_GAP": "no raw rows for his team's side: re-scrape the box score",
    "ANALYTICS_GAP": "raw says he played, analytics has no row: re-run phase 3",
    "NAME_UNRESOLVED": "an unresolved name on his side may be him: fix the registry",
    "UNDECIDED": "the evidence cannot place this game",
}


#: Why a judged item has no per-game evidence, by its verdict.
NO_GAMES_WHY = {
    "PROCESSING_ERROR": "No per-game evidence: the category says the processor itself failed (not that data is "
    "missing), so there are no games to check. Look at the reason and the processor's run.",
    "INSUFFICIENT_HISTORY": "No per-game evidence: the player has too few games in the window (the first weeks of a "
    "season, a new or returning player), so no game is missing. It settles as he plays.",
    "COMPLETE": "No per-game evidence: every game the window expects is in the data now. Auto-resolve settles it.",
    "UNKNOWN": "No per-game evidence: the item names nothing the classifier can check (no list of games or dates, "
    "or one it cannot read, or an entity it cannot place). Look at the reason as recorded.",
    "": "No per-game evidence: the verdict was reached from the item as a whole (its category and counts).",
}


def _as_on_his_strip(store: Store, lookup: str, games: pd.DataFrame) -> pd.DataFrame:
    """A game absent from its box score reads as on his season strip (one rule for his team): a game of a team he
    joins later, before he arrived, is "not with the team yet" rather than "not in the box score"."""
    bounds = context.guarded(lambda: data.bounds(store))
    if not (bounds.first_date and bounds.last_date):
        return games
    season = context.guarded(lambda: data.player_season(store, lookup, bounds.first_date, bounds.last_date))
    if season.empty:
        return games
    later = season[season["outcome"] == "NOT_WITH_TEAM_YET"]
    arrived = {(pd.Timestamp(d).date(), str(t)) for d, t in zip(later["game_date"], later["team"], strict=True)}
    marks = [
        v == "NOT_IN_BOXSCORE" and (pd.Timestamp(d).date(), str(t)) in arrived
        for v, d, t in zip(games["verdict"], games["game_date"], games["team_abbr"], strict=True)
    ]
    return games.assign(verdict=games["verdict"].where(~pd.Series(marks, index=games.index), "NOT_WITH_TEAM_YET"))


def names_an_item(store: Store, text: str) -> bool:
    """Whether a link's ``?item=`` names an item that has rows (its panel is then drawn)."""
    try:
        key = ItemKey.parse(text)
    except ValueError:
        return False
    return context.guarded(lambda: data.item(store, key)) is not None


def render_linked(store: Store, text: str, actor: Actor | None) -> None:
    """The panel of the item a link names (``?item=KEY``): a key that cannot exist, or an item whose rows are gone,
    is said so instead."""
    try:
        key = ItemKey.parse(text)
    except ValueError as exc:
        st.warning(f"The link names an item that cannot exist: {md(str(exc)[:300])}", icon=":material/link_off:")
        return
    item = context.guarded(lambda: data.item(store, key))
    if item is None:
        st.warning(
            f"No failure rows are left for item {md(key.text[:300])}: a processor rerun may have replaced them.",
            icon=":material/search_off:",
        )
        return
    render(store, item, key, actor)


def render(store: Store, item: pd.Series, key: ItemKey, actor: Actor | None) -> None:
    """An item's evidence, the verdict of each missing game, its status history and its actions."""
    with st.container(border=True, key="failures_detail"):
        st.markdown(f"#### {md(item['entity_id'])} · {md(item['processor_name'])} · {item['item_date']}")
        st.caption(f"Item key: {md(item['key'])}")
        if not str(item["entity_id"]) or not str(item["processor_name"]):
            empty = " and ".join(n for n, v in (("processor", item["processor_name"]), ("entity", item["entity_id"]))
                                 if not str(v))  # fmt: skip
            st.caption(f":material/info: Its rows record no {empty} (NULL or empty text, which the pipeline's schema "
                       "forbids): every such row of this table and date is this one item.")  # fmt: skip
        if item["entity_type"] == "PLAYER":
            st.page_link("views/triage/player.py", label=f"Open {item['entity_id']}'s season", icon=":material/person:",
                         query_params={"player": str(item["entity_id"])})  # fmt: skip
        # The type's tile is the wider: its longest word (INSUFFICIENT_HISTORY) is 20 letters.
        c = st.columns([1, 1.6, 0.8, 1])
        since = f"since {item['status_at']}" if item["events"] else None
        # Words, not counts (INVESTIGATING, INSUFFICIENT_HISTORY): a smaller type (widgets.LAYOUT_CSS), where a count's
        # size cut them to "INVESTIGA…" on a 1280 px laptop.
        c[0].container(key="word_tile_status").metric("Status", str(item["status"]), help=since)
        c[1].container(key="word_tile_type").metric("Failure type", str(item["failure_type"]))
        c[2].metric("Occurrences", fmt_int(int(item["occurrences"])), help=f"{int(item['runs'])} distinct run ids")
        expected, actual = item["expected_count"], item["actual_count"]
        c[3].metric("Found / expected", "–" if pd.isna(expected) else f"{actual} / {expected}")
        retry = "not recorded" if pd.isna(item["can_retry"]) else ("yes" if bool(item["can_retry"]) else "no")
        st.markdown(f"**Category** {md(item['failure_category'])} · can retry: {retry}")
        if item["entity_type"] in ("PLAYER", "TEAM"):
            window = context.classifier_config().window_label(str(item["processor_name"]))
            whose = "his team as of that date" if item["entity_type"] == "PLAYER" else "the team"
            st.markdown(
                f"**Window** {window} before {item['item_date']}: the final games of {whose} "
                "(this processor's configured window; `[triage.windows]` in secrets or `TRIAGE_WINDOWS`)"
            )
        st.markdown("**Latest reason** (as recorded)")
        st.text(str(item["failure_reason"]))
        missing = item["missing_json"]
        if missing is not None and not pd.isna(missing) and str(missing) != "":
            try:
                values = json.loads(str(missing))
                if not isinstance(values, list) or not all(isinstance(v, str | int | float) for v in values):
                    raise TypeError("not a list of dates or ids")
                more = f" and {len(values) - 200:,} more" if len(values) > 200 else ""
                shown = ", ".join(md(v) for v in values[:200]) + more
                st.markdown("**Missing** " + (shown if values else "none"))
            except (ValueError, TypeError, RecursionError):  # not JSON, not a flat list, or nested past any sense
                st.warning("The missing-games column does not hold a JSON list of dates or ids; shown as recorded:")
                st.text(str(missing)[:2000] + (" …" if len(str(missing)) > 2000 else ""))
        judged = context.guarded(lambda: data.judgement(store, key))
        if judged is not None and item["failure_type"] != UNCLASSIFIED:
            if not judged["judged"]:
                st.warning(
                    f"**This verdict ({md(item['failure_type'])}) is the pipeline's own**: the dashboard has not "
                    "judged this item since its rows were written, so there is no per-game evidence yet. Run the "
                    "classification (Overview, or `python -m lib classify`); the nightly job does it every morning.",
                    icon=":material/gavel:",
                )
            elif judged["disagrees"]:
                st.markdown(f"**The pipeline said** {md(judged['pipeline_said'].removeprefix('≠ '))}; "
                            f"we say {md(item['failure_type'])}, from the evidence below.")  # fmt: skip
            elif pd.notna(judged["pipeline_type"]) and judged["pipeline_type"] is not None:
                st.caption("The pipeline's classifier said the same.")
        games = context.guarded(lambda: data.missing_games(store, key))
        if item["entity_type"] == "PLAYER" and len(games) and (games["verdict"] == "NOT_IN_BOXSCORE").any():
            games = _as_on_his_strip(store, str(item["entity_id"]), games)
        if not len(games) and judged is not None and judged["judged"]:
            st.caption(":material/info: " + NO_GAMES_WHY.get(str(item["failure_type"]), NO_GAMES_WHY[""]))
        if len(games):
            st.markdown("**Missing games, as classified**")
            st.dataframe(
                games.assign(meaning=games["verdict"].map(VERDICT_HELP)),
                hide_index=True,
                key="failures_missing_games",
                column_order=(
                    "game_date",
                    "team_abbr",
                    "game_id",
                    "verdict",
                    "is_correctable",
                    "dnp_reason",
                    "meaning",
                ),
                column_config={
                    "game_date": st.column_config.DateColumn("Game date", format="YYYY-MM-DD"),
                    "team_abbr": "Team",
                    "game_id": "Game",
                    "verdict": "Verdict",
                    "is_correctable": st.column_config.CheckboxColumn("Correctable"),
                    "dnp_reason": "Reason in the box score",
                    "meaning": "What it means",
                },
            )
        elif item["failure_type"] == UNCLASSIFIED:
            st.caption("Not classified yet: run the classification (Overview, or `python -m lib classify`).")
        st.caption(
            f"First seen {item['first_seen']} · last seen {item['last_seen']} · latest run {md(item['latest_run_id'])}"
        )
        st.markdown("**Status history** (the audit trail; reopening is the undo)")
        events = context.guarded(lambda: data.history(store, key))
        if len(events):
            st.dataframe(
                events,
                hide_index=True,
                key="failures_history",
                column_order=("at", "actor", "from_status", "to_status", "note", "origin"),
                column_config={
                    "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC"),
                    "actor": "Who",
                    "from_status": "From",
                    "to_status": "To",
                    "note": st.column_config.TextColumn("Note", width="large"),
                    "origin": "Via",
                },
            )
        else:
            st.caption("No status change yet.")
        asked = context.guarded(lambda: data.item_requests(store, key))
        for r in asked.head(5).to_dict("records") if len(asked) else []:
            how = {"sent": f"sent, message {r['message_id']}", "recorded": "recorded, to run by hand",
                   "failed": f"not sent: {str(r['error'] or '')[:120]}",
                   "duplicate": "not sent: someone asked first"}.get(str(r["outcome"]), str(r["outcome"]))  # fmt: skip
            st.caption(
                f":material/send: Re-run requested by {md(r['actor'])} on {pd.Timestamp(r['at']):%Y-%m-%d %H:%M} UTC: "
                f"step {r['step']} {md(r['stage'])} for {pd.Timestamp(r['data_date']):%Y-%m-%d} ({md(how)}) · "
                f"_{md(str(r['note'])[:120])}_"
            )
        if item["recurred"]:
            st.caption(f":material/replay: Recorded again by a run after its status was set ({item['status_at']}).")
        resolve.buttons(store, lambda: resolution.Scope.of_keys([key]), actor, key="failures_item",
                        what=f"this item ({key.text})", label="This item")  # fmt: skip
