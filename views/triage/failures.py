"""Failure list: the filtered items, sorted and paginated in the engine, with evidence and CSV export."""

from __future__ import annotations

import math

import streamlit as st

from lib import resolution
from lib.model import CHANGE_KINDS, SORTS, Page
from ui import briefing as briefing_panel
from ui import context, data, filters, identity, resolve
from ui import item as item_panel
from ui.widgets import ITEM_COLUMN_CONFIG, ITEM_COLUMN_ORDER, blank_nulls, fmt_int, md

K_SORT, K_SIZE, K_PAGE, K_TABLE, K_SEEN = (
    "failures_sort",
    "failures_page_size",
    "failures_page",
    "failures_table",
    "failures_seen_filters",
)
K_SHOWN, K_ACT_ON = "failures_shown_keys", "failures_act_on"


store = context.get_store()
f = filters.current()
# A link from the overview's "what changed" panel (or the nightly digest) narrows the list to those items.
wanted = briefing_panel.changed_filter()
if isinstance(wanted, tuple):
    f = f.with_(changed=wanted[0], changed_since=wanted[1])
actor = identity.current_actor()
resolve.show_toast()

# A new filter starts again at page 1.
signature = tuple(sorted(f.to_params().items()))
if st.session_state.get(K_SEEN) != signature:
    st.session_state[K_SEEN] = signature
    st.session_state[K_PAGE] = 1

total = context.guarded(lambda: data.count(store, f))

st.title("Failure list")
st.caption(md(filters.describe(f)))
if isinstance(wanted, str):
    st.warning(f"Ignored from the link: {wanted}. Showing every item the filters cover.", icon=":material/link_off:")
elif wanted:
    kind, since = wanted
    note, clear = st.columns([5, 1], vertical_alignment="center")
    note.info(
        f"Showing only the **{fmt_int(total)}** item(s) counted as **{CHANGE_KINDS[kind]}** since "
        f"{since:%Y-%m-%d %H:%M} UTC. {briefing_panel.HELP[kind]}",
        icon=":material/filter_alt:",
    )
    if clear.button("Show every item", key="failures_clear_changed", icon=":material/close:"):
        briefing_panel.clear_changed()
        st.rerun()

top = st.columns([1.6, 2.3, 1, 1, 1.5], vertical_alignment="bottom")
sort = top[0].selectbox("Sort by", SORTS, key=K_SORT)
size = top[1].segmented_control("Rows per page", [25, 50, 100, 250], default=50, key=K_SIZE) or 50
pages = max(1, math.ceil(total / size))
if st.session_state.get(K_PAGE, 1) > pages:
    st.session_state[K_PAGE] = pages


def _step(delta: int) -> None:
    st.session_state[K_PAGE] = min(pages, max(1, st.session_state.get(K_PAGE, 1) + delta))


top[2].button(
    "Prev",
    key="failures_prev",
    icon=":material/chevron_left:",
    on_click=_step,
    args=(-1,),
    disabled=st.session_state.get(K_PAGE, 1) <= 1,
)
top[3].button(
    "Next",
    key="failures_next",
    icon=":material/chevron_right:",
    on_click=_step,
    args=(1,),
    disabled=st.session_state.get(K_PAGE, 1) >= pages,
)
number = top[4].number_input(f"Page (of {fmt_int(pages)})", min_value=1, max_value=pages, step=1, key=K_PAGE)

start = (number - 1) * size
counted, export = st.columns([3, 1.3], vertical_alignment="center")
counted.markdown(
    f"**{fmt_int(total)} items** match"
    + (f" · showing {fmt_int(start + 1)}–{fmt_int(min(start + size, total))}" if total else "")
)
with export:
    st.download_button(
        f"Export {fmt_int(total)} items as CSV",
        data=data.csv_export(store, f, str(sort)),
        file_name=f"failure-items_{f.date_from or 'all'}_{f.date_to or 'all'}.csv",
        mime="text/csv",
        key="failures_export",
        icon=":material/download:",
        disabled=total == 0,
        on_click="ignore",
        width="stretch",
    )

frame = context.guarded(lambda: data.page(store, f, Page(int(number), int(size), str(sort))))
table = resolve.table_key(K_TABLE, list(frame["key"]))  # other rows, another table: no selection carried over
notice = st.empty()  # above the table, where the person looks: why the rows they selected are not any more
event = st.dataframe(
    blank_nulls(frame),
    hide_index=True,
    key=table,
    on_select="rerun",
    selection_mode="multi-row",
    column_order=ITEM_COLUMN_ORDER,
    column_config=ITEM_COLUMN_CONFIG,
    height=min(38 + 35 * max(len(frame), 1), 740),
)

selected = resolve.selected_keys(event, list(frame["key"]), table, K_SHOWN, view=(f, number, size, sort),
                                 notice=notice)  # fmt: skip

K_ITEM = "item"  # query parameter: the item whose evidence is shown, so a link can point at it
if len(selected) == 1:
    st.query_params[K_ITEM] = selected[0]

with st.container():
    act_on = st.segmented_control(
        "Act on",
        ["selected", "matching"],
        default="selected",
        key=K_ACT_ON,
        format_func=lambda v: (
            f"Selected ({fmt_int(len(selected))})" if v == "selected" else f"All {fmt_int(total)} matching the filter"
        ),
    )
    if act_on == "matching":
        everything = f"every item matching the filter ({filters.describe(f)})"
        resolve.buttons(store, lambda: resolution.Scope(f), actor, key="failures_bulk", what=everything,
                        disabled=total == 0, label=f"All {fmt_int(total)}")  # fmt: skip
    elif len(selected) == 1 and st.query_params.get("item") == selected[0]:
        # One row per scope: the selected item's own panel below has its buttons.
        st.caption(":material/arrow_downward: The selected item's actions are in its panel below.")
    elif not selected and resolve.can_act(actor) and item_panel.names_an_item(store, st.query_params.get(K_ITEM, "")):
        # Opened from a link: no row is selected, and a row of disabled buttons for none would read as the item's.
        st.caption(":material/arrow_downward: The linked item's actions are in its panel below; select rows of the "
                   "list to act on several at once.")  # fmt: skip
    else:
        resolve.buttons(store, lambda: resolution.Scope.of_keys(selected), actor, key="failures_selected",
                        what="the selected items", disabled=not selected,
                        label=f"{fmt_int(len(selected))} selected")  # fmt: skip
chosen = st.query_params.get(K_ITEM)
if chosen:
    item_panel.render_linked(store, chosen, actor)
else:
    st.caption("Select a row to see its evidence; the address bar then links to that item.")

resolve.render_pending(store)
