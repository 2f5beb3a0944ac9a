"""A change made while a person's confirm dialog is open, in a real browser, clicked as a person clicks."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from urllib.parse import quote, unquote

from playwright.sync_api import Browser, expect

from lib import activity, resolution
from lib.model import Actor, Filters, ItemKey, Page, Role
from lib.store import DuckDBStore
from lib.store import queries as q
from lib.store.duckdb_store import release_idle
from tests.e2e.conftest import ARTIFACTS, serve
from tests.e2e.test_browser import _settled, _sign

WAIT = 60_000  # ms: every wait, on a machine the other tests share


def test_a_confirm_is_refused_when_the_job_settled_the_item_while_the_dialog_was_open(
    demo_db_path: Path, tmp_path: Path, browser: Browser
) -> None:
    """The note's box sends its text when it loses focus, a run of the dialog of its own as the person moves to
    Confirm; a person's click holds the button a tenth of a second or more. The nightly job's auto-resolve commits in
    between, its event stamped with the job's start, before the dialog opened. Confirm must be refused (nothing
    written), show the item as it is now, and the next confirm go through."""
    db = tmp_path / "confirm.duckdb"
    shutil.copy(demo_db_path, db)
    store = DuckDBStore(db)
    day = dt.date(2022, 4, 10)
    key = q.list_items(store, Filters(date_from=day, date_to=day, statuses=("UNRESOLVED",)), Page(1, 1))["key"].iloc[0]
    release_idle(db)
    served = serve(db, tmp_path)
    url = next(served)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{url}/failures?item={quote(key, safe='')}", timeout=WAIT)
        expect(page.get_by_role("heading", name="Failure list")).to_be_visible(timeout=WAIT)
        _settled(page)
        _sign(page)
        page.locator(".st-key-failures_detail").get_by_role("button", name="Mark permanent").click(timeout=WAIT)
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text(f"Mark this item ({key}) as PERMANENT.")).to_be_visible(timeout=WAIT)
        _settled(page)
        note = dialog.get_by_label("Note (required): why?")
        note.fill("did not play: DNP in the gamebook", timeout=WAIT)
        dialog.get_by_text("Recorded as").click(timeout=WAIT)  # the box loses focus: the dialog runs again
        _settled(page)
        stamped = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # the job's start, before the dialog opened
        resolution.apply(store, resolution.Scope.of_keys([key]), "RESOLVED", actor=Actor("nightly-job"),
                         note="auto-resolved", now=stamped)  # fmt: skip
        release_idle(db)
        button = dialog.get_by_role("button", name="Confirm: PERMANENT")
        box = button.bounding_box(timeout=WAIT)
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.wait_for_timeout(150)  # a person's click
        page.mouse.up()
        refusal = dialog.get_by_text(f"1 item(s) changed status since you opened this: {key}.")
        expect(refusal).to_be_visible(timeout=WAIT)
        expect(dialog.get_by_text("Nothing was written")).to_be_visible(timeout=WAIT)
        expect(dialog.get_by_text("Now: RESOLVED 1")).to_be_visible(timeout=WAIT)
        page.screenshot(path=str(ARTIFACTS / "confirm-refused.png"))
        events = activity.history(store, ItemKey.parse(key))
        release_idle(db)
        assert list(events["actor"]) == ["nightly-job"]  # the person's change was not written over the job's
        dialog.get_by_role("button", name="Confirm: PERMANENT").click(timeout=WAIT)  # seen now: goes through
        expect(page.get_by_text("1 item marked PERMANENT")).to_be_visible(timeout=WAIT)
        _settled(page)
        events = activity.history(store, ItemKey.parse(key))
        latest_first = list(zip(events["actor"], events["to_status"], strict=True))
        assert latest_first == [("alice", "PERMANENT"), ("nightly-job", "RESOLVED")]
    finally:
        context.close()
        next(served, None)
        release_idle(db)


def test_a_selected_change_of_the_audit_trail_is_never_shown_as_another_when_one_comes_in(
    demo_db_path: Path, tmp_path: Path, browser: Browser
) -> None:
    """A person selects the newest change on the Activity page and reads it whole below the table. Another person's
    change comes in, and the page runs again (the sidebar's Refresh): every row has moved down one. The panel must not
    show the new change in place of the one selected (a selection by position would): it shows none until a row is
    selected again, and then the one selected."""
    db, store, first, second = _two_unresolved(demo_db_path, tmp_path / "trail.duckdb")
    resolution.apply(store, resolution.Scope.of_keys([first]), "INVESTIGATING", actor=Actor("bob", Role.RESOLVER),
                     note="first: bob looks into it \u202eevil")  # fmt: skip
    release_idle(db)
    served = serve(db, tmp_path)
    url = next(served)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    change = page.locator(".st-key-activity_change")
    try:
        page.goto(f"{url}/activity?from={DAY}&to={DAY}", timeout=WAIT)
        expect(page.get_by_role("heading", name="Activity")).to_be_visible(timeout=WAIT)
        _settled(page)
        grid = page.locator('[data-testid="stDataFrame"]').first
        box = grid.bounding_box(timeout=WAIT)
        assert box is not None
        page.mouse.click(box["x"] + 12, box["y"] + 38 + 17)  # the first row: the newest change
        # Verbatim, but for the right-to-left override, shown as its code: it would reorder what follows.
        bobs = change.get_by_text("first: bob looks into it \\u202eevil", exact=True)
        expect(bobs).to_be_visible(timeout=WAIT)
        expect(change.get_by_text("direction controls are shown as their codes")).to_be_visible(timeout=WAIT)
        _settled(page)
        resolution.apply(store, resolution.Scope.of_keys([second]), "INVESTIGATING",
                         actor=Actor("carol", Role.RESOLVER), note="second: carol came in")  # fmt: skip
        trail = activity.activity_count(store, activity.ActivityFilters(DAY, DAY))
        release_idle(db)
        page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Refresh data").click(timeout=WAIT)
        expect(page.get_by_text(f"{trail:,} changes", exact=True)).to_be_visible(timeout=WAIT)
        _settled(page)
        expect(change).to_have_count(0, timeout=WAIT)  # not carol's change in place of bob's
        expect(page.get_by_text("Select a row to read its change whole")).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("The list changed since you selected rows")).to_be_visible(timeout=WAIT)
        box = grid.bounding_box(timeout=WAIT)  # the warning above it moved the table down
        assert box is not None
        page.mouse.click(box["x"] + 12, box["y"] + 38 + 35 + 17)  # bob's change, now second
        expect(bobs).to_be_visible(timeout=WAIT)
        expect(change.get_by_text("second: carol came in")).to_have_count(0, timeout=WAIT)
    finally:
        context.close()
        next(served, None)
        release_idle(db)


def test_a_selection_on_the_failure_list_never_moves_to_another_item_when_the_list_changes(
    demo_db_path: Path, tmp_path: Path, browser: Browser
) -> None:
    """A person lists the UNRESOLVED items and selects the first. Another person resolves it, so it leaves the list and
    every row moves up one. The page runs again, and again: the person's selection must not move to the item now in
    that place (its panel opened, its key in the address bar, the buttons acting on it)."""
    db, store, first, second = _two_unresolved(demo_db_path, tmp_path / "moved.duckdb")
    release_idle(db)
    served = serve(db, tmp_path)
    url = next(served)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refresh = page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Refresh data")
    try:
        page.goto(f"{url}/failures?from={DAY}&to={DAY}&status=UNRESOLVED", timeout=WAIT)
        expect(page.get_by_role("heading", name="Failure list")).to_be_visible(timeout=WAIT)
        _settled(page)
        _sign(page)
        grid = page.locator('[data-testid="stDataFrame"]').first
        box = grid.bounding_box(timeout=WAIT)
        assert box is not None
        page.mouse.click(box["x"] + 12, box["y"] + 38 + 17)  # the first row
        expect(page.get_by_text(f"Item key: {first}")).to_be_visible(timeout=WAIT)
        _settled(page)
        resolution.apply(store, resolution.Scope.of_keys([first]), "RESOLVED", actor=Actor("bob", Role.RESOLVER),
                         note="re-ingested")  # fmt: skip
        release_idle(db)
        warning = page.get_by_text("The list changed since you selected rows")
        for run in ("the run that finds the list changed", "any run after it"):
            refresh.click(timeout=WAIT)
            _settled(page)
            expect(page.get_by_text("Selected (0)")).to_be_visible(timeout=WAIT)
            expect(page.get_by_text(f"Item key: {second}")).to_have_count(0, timeout=WAIT)
            assert second not in unquote(page.url), run
            if run.startswith("the run that finds"):
                expect(warning).to_be_in_viewport(timeout=WAIT)  # above the table, where the person looks
            else:
                expect(warning).to_have_count(0, timeout=WAIT)
        # The person's own move to the next page of the list: nothing selected there, and no warning about it.
        page.mouse.click(box["x"] + 12, box["y"] + 38 + 17)
        expect(page.get_by_text("Selected (1)")).to_be_visible(timeout=WAIT)
        _settled(page)
        page.get_by_role("button", name="Next").click(timeout=WAIT)
        _settled(page)
        expect(page.get_by_text("Selected (0)")).to_be_visible(timeout=WAIT)
        expect(warning).to_have_count(0, timeout=WAIT)
    finally:
        context.close()
        next(served, None)
        release_idle(db)


#: The demo's date the browser tests of the audit trail and the list look at.
DAY = dt.date(2022, 4, 10)


def _two_unresolved(demo: Path, db: Path) -> tuple[Path, DuckDBStore, str, str]:
    """A copy of the demo database, and the first two UNRESOLVED items the failure list shows of ``DAY``."""
    shutil.copy(demo, db)
    store = DuckDBStore(db)
    unresolved = Filters(date_from=DAY, date_to=DAY, statuses=("UNRESOLVED",))
    first, second = q.list_items(store, unresolved, Page(1, 2))["key"]
    return db, store, str(first), str(second)
