"""Eight people at once: concurrent headless chromium sessions against one dashboard server, while the nightly job
runs on the same database.

    python bench/load.py --db PATH [--sessions 8] [--rounds 1] [--no-nightly] [--nice-browsers] [--keep]

Each session signs in under its own name (``load-1`` ...) and goes through the overview, the failure list, a
player's page and one resolution (an item of its own, from its panel on the failure list, with a note). A page's
time runs from the navigation (or the click) until the page's title is shown and Streamlit's run is over. Each page
is an address typed in: a full load, with the browser's start of Streamlit's front end (the bare page measures
that part alone). The nightly job covers the latest ``--nightly-days`` days. Printed:
p50, p95 and the slowest time per page over every session and round, as figures and as ratios against the bare
page (an empty Streamlit page load measured in the same run); the errors; the server's peak memory; and the checks:

* no lost and no doubled write: each session's item has exactly one event by that session's name, and nothing
  else was changed under those names;
* no session sees another's state: after every session signed in, each page still says it acts as its own name.

The database is copied first (``--keep`` keeps the copy). Figures are printed, never asserted: the machines are
shared and noisy. Needs Debian's chromium (``make browser``) and Playwright from requirements-dev.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Page, async_playwright  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from lib.model import Filters, ItemKey  # noqa: E402
from lib.model import Page as ListPage  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402
from lib.store import queries as q  # noqa: E402
from lib.store.duckdb_store import release_idle  # noqa: E402
from tests.servers import free_port, wait_until_answering  # noqa: E402

TIMEOUT = 180_000  # ms: every wait, on a machine eight browsers share with the server and the nightly job
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


async def settled(page: Page) -> None:
    """Until Streamlit's current run is over (its status widget gone)."""
    status = page.locator('[data-testid="stStatusWidget"]')
    with contextlib.suppress(PlaywrightTimeout):  # over before we looked
        await status.wait_for(state="visible", timeout=1_000)
    await status.wait_for(state="detached", timeout=TIMEOUT)


async def timed_goto(page: Page, url: str, title: str) -> float:
    started = time.perf_counter()
    await page.goto(url, timeout=TIMEOUT)
    await page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT)
    await settled(page)
    return time.perf_counter() - started


async def acting_as(page: Page) -> str:
    text = await page.locator('[data-testid="stSidebar"]').get_by_text("Acting as").first.inner_text(timeout=TIMEOUT)
    return " ".join(text.split())


async def session(
    n: int, browser, url: str, plan: dict, rounds: int, times: dict, errors: list, together: asyncio.Barrier
) -> str:
    name = f"load-{n + 1}"
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    span = f"from={plan['from']}&to={plan['to']}"
    seen = ""
    try:
        for _ in range(rounds):
            times["overview"].append(await timed_goto(page, f"{url}/?{span}", "Failure overview"))
            times["failure list"].append(await timed_goto(page, f"{url}/failures?{span}", "Failure list"))
            player = quote(plan["players"][n % len(plan["players"])], safe="")
            times["player"].append(await timed_goto(page, f"{url}/player?player={player}&{span}", "Player"))
        key = quote(plan["keys"][n], safe="")
        times["item panel"].append(await timed_goto(page, f"{url}/failures?item={key}&{span}", "Failure list"))
        # Each address typed is a new Streamlit session: say who you are on this one.
        field = page.locator('[data-testid="stSidebar"]').get_by_label("Your name, for the audit trail")
        await field.fill(name, timeout=TIMEOUT)
        await field.press("Enter")
        await settled(page)
        started = time.perf_counter()
        detail = page.locator(".st-key-failures_detail")
        await detail.get_by_role("button", name="Resolve").click(timeout=TIMEOUT)
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("Note (required): why?").fill(f"load test, session {n + 1}", timeout=TIMEOUT)
        await dialog.get_by_role("button", name="Confirm: RESOLVED").click(timeout=TIMEOUT)
        await dialog.wait_for(state="detached", timeout=TIMEOUT)
        await settled(page)
        times["resolution"].append(time.perf_counter() - started)
        # Once every session has signed in under its name and resolved, each moves to another page within its own
        # session (the sidebar's link) and must still act under its own name, not the last one given.
        await asyncio.wait_for(together.wait(), timeout=TIMEOUT / 1000)
        await page.locator('[data-testid="stSidebarNav"]').get_by_text("Overview", exact=True).click(timeout=TIMEOUT)
        await page.get_by_role("heading", name="Failure overview").first.wait_for(timeout=TIMEOUT)
        await settled(page)
        seen = await acting_as(page)
    except Exception as exc:  # reported, never hidden: one session's failure must not stop the others
        errors.append(f"session {n + 1}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        await together.abort()
    finally:
        await context.close()
    return seen


async def bare_page(browser, url: str, repeat: int) -> float:
    """The baseline: an empty Streamlit page (the health endpoint's page shell and one run of a script that only
    writes a title) is not available, so: the dashboard's Activity page for a signed-out visitor, which reads
    nothing but the audit trail's first page."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    times = [await timed_goto(page, f"{url}/activity", "Activity") for _ in range(repeat)]
    await context.close()
    return statistics.median(times)


def plan_for(store: DuckDBStore, sessions: int) -> dict:
    """Each session's item (unresolved, its own) and some players with items, in the latest 30 days."""
    _, last, _ = store.date_bounds()
    assert last is not None, "the database has no failure rows"
    first = last - dt.timedelta(days=29)
    f = Filters(date_from=first, date_to=last, statuses=("UNRESOLVED",), hide_expected=False)
    listed = q.list_items(store, f, ListPage(1, 200, "most occurrences"))
    players = [e for e, t in zip(listed["entity_id"], listed["entity_type"], strict=True) if t == "PLAYER"]
    keys = [str(k) for k in listed["key"]][:sessions]
    assert len(keys) == sessions, "not enough unresolved items for one per session"
    return {"from": first, "to": last, "keys": keys, "players": sorted(set(players))[:sessions] or ["nobody"]}


def check_writes(store: DuckDBStore, plan: dict, sessions: int) -> list[str]:
    events = store.query(
        "SELECT actor, source_table, processor_name, item_date, entity_id, to_status "
        "FROM nba_processing.failure_resolutions WHERE STARTS_WITH(actor, 'load-') AND item_date BETWEEN @a AND @b",
        {"a": plan["from"], "b": plan["to"]},
    )
    problems = []
    for n in range(sessions):
        mine = events[events["actor"] == f"load-{n + 1}"]
        want = ItemKey.parse(plan["keys"][n])
        if len(mine) != 1 or mine["to_status"].iloc[0] != "RESOLVED":
            problems.append(f"load-{n + 1} recorded {len(mine)} event(s), not one RESOLVED")
            continue
        got = mine.iloc[0]
        if (got["source_table"], got["processor_name"], got["item_date"], got["entity_id"]) != (
            want.source_table, want.processor_name, want.item_date, want.entity_id):  # fmt: skip
            problems.append(f"load-{n + 1} changed another item than its own {plan['keys'][n]}")
    return problems


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a process and its children (VmHWM), in MB."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                     text=True).stdout.split()]  # fmt: skip
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def chromium(work: Path, nice: bool) -> str:
    """Debian's chromium; with ``nice``, started at the lowest priority, so that on a machine that hosts both the
    browsers and the server, the server is served first (as when the people are on machines of their own)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("Needs Debian's chromium: make browser")
    if not nice:
        return path
    wrapper = work / "chromium-nice"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n 19 {path} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user and system, with reaped children) the processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


def descendants(pid: int) -> list[int]:
    """The processes started, directly or not, by ``pid`` (this bench's browsers, never another's)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def browser_pids(server: int) -> list[int]:
    """This bench's chromium processes (the browser, its zygotes and renderers: renderers that end are counted in
    the process that reaps them)."""
    mine = set(descendants(os.getpid())) - {server, *descendants(server)}
    out = []
    for p in mine:
        try:
            if "chrom" in Path(f"/proc/{p}/comm").read_text():
                out.append(p)
        except OSError:
            pass
    return out


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]  # nearest rank


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="triage-load-"))
    db = work / "load.duckdb"
    shutil.copy(args.db, db)
    store = DuckDBStore(db)
    store.init_schema()
    plan = plan_for(store, args.sessions)
    release_idle(db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(work / "streamlit.log", "w")  # noqa: SIM115
    env = {**os.environ, "TRIAGE_DB": str(db)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    nightly = None
    try:
        wait_until_answering(f"{url}/_stcore/health", server, log.name, timeout=120)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium(work, args.nice_browsers), args=FLAGS)
            # The first visit starts the server's caches and the index's check: measured apart, as "first visit".
            first = await browser.new_context()
            first_page = await first.new_page()
            first_visit = await timed_goto(first_page, f"{url}/?from={plan['from']}&to={plan['to']}",
                                           "Failure overview")  # fmt: skip
            await first.close()
            base = await bare_page(browser, url, 3)
            if not args.no_nightly:
                nightly = subprocess.Popen(
                    [sys.executable, "-m", "lib", "nightly", "--db", str(db), "--actor", "system", "--since",
                     str(plan["from"] - dt.timedelta(days=args.nightly_days - 30))],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "nightly.log", "w"),  # noqa: SIM115
                )  # fmt: skip
            times: dict[str, list[float]] = {k: [] for k in ("overview", "failure list", "player", "item panel",
                                                             "resolution")}  # fmt: skip
            errors: list[str] = []
            started = time.perf_counter()
            server_cpu, browsers = cpu_seconds([server.pid]), browser_pids(server.pid)
            browser_cpu = cpu_seconds(browsers)
            together = asyncio.Barrier(args.sessions)
            seen = await asyncio.gather(*(session(n, browser, url, plan, args.rounds, times, errors, together)
                                          for n in range(args.sessions)))  # fmt: skip
            wall = time.perf_counter() - started
            server_cpu = cpu_seconds([server.pid]) - server_cpu
            browser_cpu = cpu_seconds(browsers) - browser_cpu  # the same processes: renderers that ended, reaped
            await browser.close()
        nightly_rc = nightly.wait(timeout=3600) if nightly else None
        peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    release_idle(db)
    problems = check_writes(DuckDBStore(db), plan, args.sessions)
    for n, text in enumerate(seen):
        if text and f"load-{n + 1}" not in text.split():
            problems.append(f"session {n + 1} shows {text!r}, not its own name")
    rows = sum(int(n) for n in [store.date_bounds()[2]])
    print(f"{args.sessions} sessions x {args.rounds} round(s) on {rows:,} failure rows ({args.db}), "
          f"latest 30 days {plan['from']} to {plan['to']}; nightly job alongside: "
          f"{'no' if nightly is None else f'yes (exit {nightly_rc})'}")  # fmt: skip
    print(
        f"first visit (cold caches) {first_visit:.2f} s; bare page (Activity, signed out) {base:.2f} s; "
        f"all sessions done in {wall:.1f} s; server peak memory {peak:,.0f} MB"
    )
    cores = os.cpu_count() or 1
    print(f"CPU while the sessions ran ({cores} cores, {wall * cores:.0f} core-seconds): server {server_cpu:.0f} s, "
          f"the browsers {browser_cpu:.0f} s")  # fmt: skip
    print(f"{'page':<14}{'n':>4}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'p50 x':>8}{'p95 x':>8}")
    for page, values in times.items():
        if values:
            p50, p95 = statistics.median(values), quantile(values, 0.95)
            print(
                f"{page:<14}{len(values):>4}{p50:>8.2f}{p95:>8.2f}{max(values):>8.2f}{p50 / base:>8.1f}"
                f"{p95 / base:>8.1f}"
            )
    print(f"errors: {len(errors)}")
    for e in errors:
        print("  " + e)
    print(f"checks: {'every write once, each session its own name' if not problems else ''}")
    for p in problems:
        print("  PROBLEM: " + p)
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if errors or problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db", required=True, help="a DuckDB file with data (e.g. from `python -m lib demo --scale 10M`)"
    )
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="times each session goes through the pages")
    parser.add_argument("--no-nightly", action="store_true", help="without the nightly job alongside")
    parser.add_argument("--nice-browsers", action="store_true", help="the browsers at the lowest CPU priority")
    parser.add_argument(
        "--nightly-days",
        type=int,
        default=30,
        help="the nightly job covers the latest this many days (its --since), as scheduled in production",
    )
    parser.add_argument("--keep", action="store_true", help="keep the copied database and the logs")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
