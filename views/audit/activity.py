"""Activity: the audit trail of every status change, filterable and exportable."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from lib.activity import ActivityFilters
from lib.model import TARGET_STATUSES
from ui import context, data, filters, resolve
from ui.widgets import ITEM_COLUMN_CONFIG, blank_nulls, fmt_hours, fmt_int, md, processor_short, unbidi

K_ACTORS, K_TO, K_TEXT, K_PAGE = "activity_actors", "activity_to", "activity_text", "activity_page"
PAGE_SIZE = 200


def _text(value: object) -> str:
    """A cell's text, '' for a missing one (None, or NaN from the engine)."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def change(event: pd.Series) -> None:
    """One status change, whole: who, when, from what to what, through what, the note uncut (in a box of bounded
    height, whatever its length: a note is kept verbatim, up to a million characters), and its item's link."""
    with st.container(border=True, key="activity_change"):
        at = pd.Timestamp(event["at"])
        origin = _text(event.get("origin"))
        st.markdown(
            f"**{md(_text(event['actor']))}** · {at:%Y-%m-%d %H:%M:%S} UTC · "
            f"{md(_text(event['from_status']) or 'no status')} → **{md(_text(event['to_status']))}**"
            + (f" · via {md(origin)}" if origin else "")
        )
        note = _text(event["note"])
        # As plain text, verbatim, but for direction controls, shown as their codes: they would reorder it.
        shown = unbidi(note)
        lines = note.count("\n") + 1
        long = len(note) > 600 or lines > 8
        with st.container(height=200 if long else "content", border=False):
            st.text(shown if note.strip() else "(no note)")
        if long or shown != note:
            st.caption(f"{fmt_int(len(note))} characters, {fmt_int(lines)} line{'s' if lines != 1 else ''}"
                       + ("; its direction controls are shown as their codes (\\u202e …)" if shown != note else "")
                       + ".")  # fmt: skip
        key = _text(event["item_key"])
        st.page_link("views/triage/failures.py", label=f"Open the item {md(key)}", icon=":material/open_in_new:",
                     query_params={"item": key})  # fmt: skip


store = context.get_store()
f = filters.current()

st.title("Activity")
span = f"{f.date_from} to {f.date_to}" if f.date_from and f.date_to else "all dates"
st.caption(
    "Every status change, newest first: who, when, from what to what, and why; for items dated "
    f"{span} (the sidebar's date range)."
)

# The page's number on the filters' row: on a 1280 x 800 laptop the table and a selected row's change below it are
# then on screen together.
c1, c2, c3, c4 = st.columns([2, 2, 3, 1.3])
who = c1.multiselect("Who", context.guarded(lambda: data.actors(store)), key=K_ACTORS, placeholder="Anyone")
to = c2.multiselect("New status", [s.value for s in TARGET_STATUSES], key=K_TO, placeholder="Any status")
text = c3.text_input("Note, item or person contains", key=K_TEXT, max_chars=200)
af = ActivityFilters(f.date_from, f.date_to, tuple(who), tuple(to), text or "")

total = context.guarded(lambda: data.activity_count(store, af))
pages = max(1, -(-total // PAGE_SIZE))
number = c4.number_input(f"Page (of {fmt_int(pages)})", 1, pages, 1, key=K_PAGE) if pages > 1 else 1
st.markdown(f"**{fmt_int(total)} changes**")
events = context.guarded(lambda: data.activity_page(store, af, limit=PAGE_SIZE, offset=(int(number) - 1) * PAGE_SIZE))
if events.empty:
    st.info("No status change matches. Changes made on the failure list appear here.", icon=":material/history:")
else:
    # The item by its parts (date, processor, entity: what tells items apart), the note wide; the full key is in
    # the CSV export and in the table's last column. A row selected shows its change whole below (a note is cut at
    # the table's edge on a 1280 px laptop). The table's key is made of the events it shows: a selection is of these
    # rows, and when they change (another page or filter, a new change come in) the table starts with none selected,
    # rather than pointing at the same place in other rows.
    ids = [str(v) for v in events["event_id"]]
    table = resolve.table_key("activity_table", ids)
    notice = st.empty()
    picked = st.dataframe(
        blank_nulls(events.assign(processor_short=[processor_short(p) for p in events["processor_name"]])),
        hide_index=True,
        key=table,
        on_select="rerun",
        selection_mode="single-row",
        column_order=(
            "at",
            "actor",
            "item_date",
            "processor_short",
            "entity_id",
            "from_status",
            "to_status",
            "note",
            "origin",
            "item_key",
        ),
        column_config={
            "at": st.column_config.DatetimeColumn("When (UTC)", format="MMM D HH:mm", timezone="UTC", width=100),
            "actor": st.column_config.TextColumn("Who", width=60),
            "item_date": st.column_config.DateColumn("Item date", format="YYYY-MM-DD", width=96),
            "processor_short": ITEM_COLUMN_CONFIG["processor_short"],
            "entity_id": st.column_config.TextColumn("Entity", width=130),
            "from_status": st.column_config.TextColumn("From", width=100),
            "to_status": st.column_config.TextColumn("To", width=100),
            "note": st.column_config.TextColumn("Note", width="large"),
            "origin": "Via",
            "item_key": st.column_config.TextColumn("Item key", width="large"),
        },
        height=min(38 + 35 * len(events), 318),  # eight rows: a row selected has its change on screen below
    )
    chosen = resolve.selected_keys(picked, ids, table, "activity_shown", view=(af, number), notice=notice)
    if chosen:
        change(events.iloc[ids.index(chosen[0])])
    else:
        st.caption("Select a row to read its change whole (its note uncut) and open its item.")


EXPORT_COLUMNS = ("at", "actor", "item_key", "from_status", "to_status", "note", "origin", "batch_id", "event_id")


def _export() -> bytes:
    return data.activity_export(store, af, EXPORT_COLUMNS)


st.download_button(
    f"Export {fmt_int(total)} changes as CSV",
    data=_export,
    file_name="failure-activity.csv",
    mime="text/csv",
    key="activity_export",
    icon=":material/download:",
    disabled=total == 0,
    on_click="ignore",
)


st.divider()
st.markdown("#### Operations")
st.caption(
    "Every classification, re-classification, auto-resolve, status sync and demo write: who ran it, from "
    "where (dashboard, command line, first start), over which dates and how it ended. Newest first."
)
ops = context.guarded(lambda: data.recent_operations(store))
if ops.empty:
    st.caption("No operation recorded yet.")
else:
    shown = ops.drop(columns=["operation_id"]).assign(
        date_from=ops["date_from"].map(lambda d: d.isoformat() if d is not None and not pd.isna(d) else "all dates"),
        date_to=ops["date_to"].map(lambda d: d.isoformat() if d is not None and not pd.isna(d) else "all dates"),
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "finished_at": st.column_config.DatetimeColumn("Finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "kind": "What",
            "actor": "Who",
            "origin": "Via",
            "date_from": "From",
            "date_to": "To",
            "outcome": "Outcome",
            "summary": st.column_config.TextColumn("Summary", width="large"),
        },
        height=min(38 + 35 * len(ops), 400),
    )

st.subheader("Re-run requests")
st.caption(
    "Every request made from an incident or the command line: who asked, when, why, how many messages went where, "
    "and where it stands now (pending, run seen, still failing, settled, stale; README, *Fixing from the console*). "
    "Newest first; the item dates are the sidebar's."
)
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
asked = context.guarded(lambda: data.rerun_requests(store, f, now=now))
if asked.empty:
    st.caption("No re-run requested in this range yet.")
else:
    st.dataframe(
        blank_nulls(
            asked.drop(columns=["request_id"]).assign(
                to_settle=[fmt_hours(h) if pd.notna(h) else "" for h in asked["hours_to_settle"]]
            )
        ),
        hide_index=True,
        width="stretch",
        key="activity_reruns",
        column_order=(
            "at",
            "actor",
            "state",
            "to_settle",
            "incident_id",
            "messages",
            "sent",
            "dates",
            "note",
            "settled_at",
        ),  # the state first: it is what a reader looks for
        column_config={
            "at": st.column_config.DatetimeColumn("Asked (UTC)", format="YYYY-MM-DD HH:mm"),
            "actor": "Who",
            "incident_id": st.column_config.TextColumn("Incident", width=230),
            "note": st.column_config.TextColumn("Note", width="large"),
            "messages": st.column_config.NumberColumn("Messages", width="small"),
            "sent": st.column_config.NumberColumn("Sent or recorded", width="small"),
            "dates": st.column_config.NumberColumn("Dates", width="small"),
            "state": st.column_config.TextColumn("State", width="small"),
            "settled_at": st.column_config.DatetimeColumn(
                "Settled (UTC)", format="YYYY-MM-DD HH:mm", help="When the last of its settled items was settled"
            ),
            "to_settle": st.column_config.TextColumn(
                "To settle", width="small", help="From the request to the settlement of the last of its settled items"
            ),
        },
        height=min(38 + 35 * len(asked), 400),
    )
