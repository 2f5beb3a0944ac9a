"""Status changes from the dashboard: a confirm dialog with a count, a sample and a required note."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib import resolution
from lib.errors import TriageError
from lib.model import Actor, ResolutionStatus, Role
from lib.store import Store
from ui import context, data
from ui.widgets import fmt_int, md

K_TOAST = "resolve_toast"
K_PENDING = "resolve_pending"  # the change whose confirm dialog is open: survives full reruns
K_SEEN = "resolve_seen"  # the preview the open dialog showed when it opened (or at its last refusal)
K_WROTE = "resolve_wrote"  # this session's change was just written: rows it moved out of a list are no surprise

#: Button label -> status it sets, in the order shown.
ACTIONS: dict[str, ResolutionStatus] = {
    "Resolve": ResolutionStatus.RESOLVED,
    "Mark permanent": ResolutionStatus.PERMANENT,
    "Investigating": ResolutionStatus.INVESTIGATING,
    "Reopen": ResolutionStatus.UNRESOLVED,
}
ICONS = {
    ResolutionStatus.RESOLVED: ":material/check_circle:",
    ResolutionStatus.PERMANENT: ":material/block:",
    ResolutionStatus.INVESTIGATING: ":material/search:",
    ResolutionStatus.UNRESOLVED: ":material/undo:",
}


#: An example note for each status, as the team writes them.
NOTE_EXAMPLES = {
    ResolutionStatus.RESOLVED: "e.g. box score re-scraped and phase 3 re-run; verified in player_game_summary",
    ResolutionStatus.PERMANENT: "e.g. did not play (DNP - Coach's Decision in the gamebook); nothing to re-ingest",
    ResolutionStatus.INVESTIGATING: "e.g. looking at the scraper's logs for this game",
    ResolutionStatus.UNRESOLVED: "e.g. reopened: the box score still lacks his minutes",
}


def table_key(base: str, shown: Sequence[str]) -> str:
    """The key of a table whose rows can be selected, made of what its rows are (item keys, event ids).

    A table keeps its selection as row positions. Under one key for good, a selection made before the rows changed
    (another person's change, new data, another page) would be carried over to what is now in those places: the
    next run showed that item's panel and its buttons acted on it. A table of other rows is a new table, with nothing
    selected."""
    digest = hashlib.sha1("\n".join(shown).encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{base}_{digest}"


def selected_keys(
    event: object,
    shown_keys: list[str],
    table: str,
    state_key: str,
    *,
    view: object = None,
    notice: DeltaGenerator | None = None,
) -> list[str]:
    """The keys of the rows selected in the table of key ``table`` (``table_key``), by stable key, never by position.

    When its rows changed since the last run and the table before them had rows selected (the selection made by the
    click that ran this, or kept from before), nothing is selected now, and a warning says so in ``notice`` (a place
    above the table, where the person looks): not when the person asked for other rows (``view``, what the rows were
    asked by: filters, page, sort) or wrote the change that moved them (``K_WROTE``)."""
    selection = getattr(event, "selection", None)
    rows = [i for i in list(getattr(selection, "rows", []) or []) if i < len(shown_keys)]
    before = st.session_state.get(state_key)
    asked = repr(view)
    wrote = st.session_state.pop(K_WROTE, False)
    if (not rows and isinstance(before, tuple) and before[0] != table and before[1] == asked and not wrote
            and _had_selection(before[0])):  # fmt: skip
        (notice or st).warning("The list changed since you selected rows (another person's change, or new data): "
                               "select them again.", icon=":material/refresh:")  # fmt: skip
    st.session_state[state_key] = (table, asked)
    return [shown_keys[i] for i in rows]


def _had_selection(table: str) -> bool:
    """Whether the table of that key (the one shown before) had rows selected when this run began."""
    try:
        state = st.session_state[table]
    except (KeyError, AttributeError):
        return False
    selection = state.get("selection", {}) if isinstance(state, Mapping) else getattr(state, "selection", None)
    rows = selection.get("rows", []) if isinstance(selection, Mapping) else getattr(selection, "rows", [])
    return bool(rows)


def show_toast() -> None:
    message = st.session_state.pop(K_TOAST, None)
    if message:
        st.toast(message, icon=":material/task_alt:")


def can_act(actor: Actor | None) -> bool:
    return actor is not None and actor.role is Role.RESOLVER


def explain_cannot_act(actor: Actor | None) -> None:
    if actor is None:
        st.caption(":material/person: Enter your name in the sidebar (or sign in) to change statuses.")
    elif actor.role is not Role.RESOLVER:
        st.caption(f":material/visibility: {md(actor.name)} is a viewer: statuses are read only.")


def _dismiss() -> None:
    st.session_state.pop(K_PENDING, None)
    st.session_state.pop(K_SEEN, None)
    st.session_state.pop("resolve_note", None)


def ask(scope: resolution.Scope, to_status: ResolutionStatus, actor: Actor, what: str) -> None:
    """Open the confirm dialog for a change; the time it opens guards against concurrent changes."""
    st.session_state.pop(K_SEEN, None)
    st.session_state[K_PENDING] = (scope, to_status, actor, dt.datetime.now(dt.UTC), what)


def render_pending(store: Store) -> None:
    """Show the open confirm dialog, if any. Pages call this after drawing their action buttons."""
    pending = st.session_state.get(K_PENDING)
    if pending:
        confirm(store, *pending)


@st.dialog("Confirm the change", width="large", on_dismiss=_dismiss)
def confirm(store: Store, scope: resolution.Scope, to_status: ResolutionStatus, actor: Actor,
            opened_at: dt.datetime, what: str) -> None:  # fmt: skip
    """Preview the change; on confirm, record it (refused if its items changed since this opened).

    Every run of the dialog previews again: the click on Confirm, and any other (the note's box sends its text when it
    loses focus, which reruns the dialog as the person moves to the button). So the write is checked against the
    preview the dialog showed when it opened (``K_SEEN``), not against the latest, which may already hold a change
    made meanwhile (the nightly job settling an item). After a refusal, which shows what changed, the preview of that
    run is what the person has read."""
    run_started = dt.datetime.now(dt.UTC)
    try:
        preview = resolution.preview(store, scope, to_status)
    except TriageError as exc:
        context.show_error(exc)
        return
    shown: resolution.Preview = st.session_state.setdefault(K_SEEN, preview)
    one_named = len(scope.keys) == 1 and scope.keys[0] in what  # "this item (KEY)", the item panel's description
    if preview.count == 0:
        moved = shown.state != preview.state
        if preview.already == 0:  # its rows are gone (a processor rerun replaced them)
            said = f"{md(what)}: no item has rows any more"
        elif one_named:
            said = f"{md(what)} is already {to_status.value}"
        else:  # "the selected items", "every item matching the filter (…)": the description's number is not the count
            n = preview.already
            items = f"{fmt_int(n)} item{'s' if n != 1 else ''}, {'all ' if n > 1 else ''}"
            said = f"{md(what)}: {items}already {to_status.value}"
        st.info(
            f"Nothing to change: {said}"
            + (" (changed since you opened this: another person or the nightly job did it)." if moved else ".")
        )
        if st.button("Close", key="resolve_close"):
            _dismiss()
            st.rerun()
        return
    reopen = to_status is ResolutionStatus.UNRESOLVED  # the button said "Reopen": the dialog says it too
    # One item that ``what`` names ("this item (KEY)"): said once, with no table of one. Any other description ("his
    # items", "the selected items", "every item matching the filter (…)") names the scope on a line of its own, with
    # how many items it holds: the sentence gives the count that changes, which is not the scope's when some already
    # have the status.
    named = one_named and preview.count == 1
    what_ = md(what) if named else f"**{fmt_int(preview.count)} item{'s' if preview.count != 1 else ''}**"
    if preview.already:
        rest = ("; 1 already is and stays as it is." if preview.already == 1
                else f"; {fmt_int(preview.already)} already are and stay as they are.")  # fmt: skip
    else:
        rest = "."
    # Of several items, the sentence says what they are now, status by status: a bulk change takes settled items too
    # (PERMANENT ones to RESOLVED, say), and that is for the person to see before confirming, not in a caption.
    moving = {s: n for s, n in sorted(preview.by_status.items()) if s != to_status.value and n}
    origin = "" if named else ", from " + " · ".join(f"{fmt_int(n)} {s}" for s, n in moving.items())
    head = (f"Reopen {what_}: back to **{to_status.value}**{origin}{rest}" if reopen
            else f"Mark {what_} as **{to_status.value}**{origin}{rest}")  # fmt: skip
    st.markdown(head)
    if named:
        st.caption("Now: " + " · ".join(f"{s} {fmt_int(n)}" for s, n in sorted(preview.by_status.items())))
    else:  # what the change covers, the riskiest fact of a bulk change: in the text's own size
        total = sum(preview.by_status.values())
        st.markdown(f"Acting on {md(what)}: **{fmt_int(total)} item{'s' if total != 1 else ''}** in all.")
    if to_status is ResolutionStatus.RESOLVED and preview.did_not_play:
        st.warning(
            f"{fmt_int(preview.did_not_play)} of these {'is' if preview.did_not_play == 1 else 'are'} PLAYER_DNP: the "
            "player did not play, so the data will never come and the next run records the failure again (the item "
            "then reads REGRESSED). **Mark permanent** settles did-not-play items for good.",
            icon=":material/warning:",
        )
    if not named:
        st.dataframe(pd.DataFrame({"sample of the items": list(preview.sample)}), hide_index=True, key="resolve_sample")
    note = st.text_area(
        "Note (required): why?",
        key="resolve_note",
        max_chars=resolution.MAX_NOTE,
        placeholder=NOTE_EXAMPLES[to_status],
    )
    st.caption(f"Recorded as **{md(actor.name)}** in the audit trail, with this note, verbatim.")
    if st.button(f"Confirm: {'reopen as ' if reopen else ''}{to_status.value}", key="resolve_confirm", type="primary",
                 icon=ICONS[to_status]):  # fmt: skip
        if not note.strip():
            st.error("A note is required: say why.")
            return
        try:
            change = resolution.apply(
                store,
                scope,
                to_status,
                actor=actor,
                note=note,
                now=dt.datetime.now(dt.UTC),
                opened_at=opened_at,
                seen=shown,
            )
        except resolution.Conflict as exc:
            # Shown now, with this run's preview above it: a confirm from here on is judged against what it shows.
            st.session_state[K_SEEN] = preview
            if st.session_state.get(K_PENDING):
                st.session_state[K_PENDING] = (scope, to_status, actor, run_started, what)
            context.show_error(exc)
            return
        except TriageError as exc:
            context.show_error(exc)
            return
        data.refresh()
        message = (f"{fmt_int(change.changed)} item{'s' if change.changed != 1 else ''} "
                   f"{'reopened as' if reopen else 'marked'} {to_status.value}")  # fmt: skip
        if not change.synced:
            message += " (row status sync pending: run `python -m lib sync-status`)"
        st.session_state[K_TOAST] = message
        st.session_state[K_WROTE] = True
        _dismiss()
        st.rerun()


def buttons(store: Store, scope_of: Callable[[], resolution.Scope], actor: Actor | None, *, key: str, what: str,
            disabled: bool = False, label: str = "") -> None:  # fmt: skip
    """One row of buttons, one per action, for one scope; ``label`` names the scope at the row's start (so that two
    rows on a page, say the selection's and one item's, cannot be taken for each other); ``scope_of()`` builds the
    scope when a button is clicked."""
    if not can_act(actor):
        explain_cannot_act(actor)
        return
    assert actor is not None
    if label:
        cols = st.columns([1.3] + [1.0] * len(ACTIONS), vertical_alignment="center")
        cols[0].markdown(f"**{md(label)}**", help=f"The buttons of this row act on {what}.")
        cols = cols[1:]
    else:
        cols = st.columns(len(ACTIONS))
    for col, (name, status) in zip(cols, ACTIONS.items(), strict=True):
        if col.button(name, key=f"{key}_{status.value.lower()}", icon=ICONS[status], disabled=disabled,
                      width="stretch"):  # fmt: skip
            ask(scope_of(), status, actor, what)
