"""Command line: ``python -m lib COMMAND --db PATH ...``. Run ``python -m lib --help``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path

from lib import classification, export, incidents, nightly, operations, reruns, resolution, webhook
from lib import demo as demo_mod
from lib.access import SYSTEM, require_person, require_resolver
from lib.classifier import ClassifierConfig
from lib.config import DEFAULT_WINDOW_KEY, Roles, Settings
from lib.errors import TriageError
from lib.model import (
    MAX_WINDOW_DAYS,
    MAX_WINDOW_GAMES,
    PHASE3_PROCESSORS,
    PHASE4_PROCESSORS,
    PHASE5_PROCESSORS,
    TARGET_STATUSES,
    UNCLASSIFIED,
    Actor,
    FailureType,
    Filters,
    ResolutionStatus,
    SourceTable,
    Window,
    parse_instant,
    parse_windows,
    utc_now,
    windows_label,
)
from lib.store import Store, index, open_store, queries


class _Progress:
    """A one-line progress bar on stderr; plain lines when stderr is not a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, fraction: float, message: str) -> None:
        bar = "#" * int(fraction * 30)
        line = f"[{bar:<30}] {fraction * 100:5.1f}%  {message}"
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
            if fraction >= 1:
                sys.stderr.write("\n")
        elif message != self.last:
            sys.stderr.write(line + "\n")
        self.last = message
        sys.stderr.flush()


def _store(args: argparse.Namespace, *, create: bool = True) -> Store:
    """The store the options name. ``create=False`` for reads: a missing database is an error, never a new file."""
    bigquery = getattr(args, "bigquery", None)
    env = dict(os.environ)
    if args.db is not None or bigquery is not None:
        env.pop("TRIAGE_DB", None)  # the option names the store: the variable is not used
    settings = Settings.from_env(env)
    if bigquery is not None and args.db is not None:
        raise ValueError("give --db PATH or --bigquery PROJECT, not both")
    if bigquery is not None:
        if not bigquery.strip():
            raise ValueError("--bigquery needs a project id (is a variable unset?)")
        bq = dataclasses.replace(settings.bigquery, project=bigquery.strip())
        settings = dataclasses.replace(settings, engine="bigquery", bigquery=bq)
    elif args.db is not None:
        if not args.db.strip():
            raise ValueError("--db is empty: give a DuckDB file (is a variable unset?)")
        settings = dataclasses.replace(settings, engine="duckdb", db_path=Path(args.db))
    return open_store(settings, create=create)


def _actor(args: argparse.Namespace, *, person: bool = False) -> Actor:
    """Who runs a write: ``--actor NAME`` (or TRIAGE_ACTOR), with the role the configuration gives that name.
    ``system`` (unattended work, e.g. a scheduler) may classify, auto-resolve, sync and seed; a status change
    by hand needs a person's name."""
    name = args.actor if args.actor is not None else os.environ.get("TRIAGE_ACTOR", "")
    if not name.strip():
        raise ValueError("say who runs this: --actor NAME (or set TRIAGE_ACTOR); a scheduler may use --actor system")
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        raise ValueError("--actor must be a name of at most 200 printable characters")
    if name.strip().casefold() == SYSTEM.name and not person:
        return SYSTEM
    return Roles.from_env().actor(name)


KNOWN_PROCESSORS = frozenset((*PHASE3_PROCESSORS, *PHASE4_PROCESSORS, *PHASE5_PROCESSORS))


def _check_range(since: dt.date | None, until: dt.date | None) -> None:
    if since and until and since > until:
        raise ValueError(f"--since {since} is after --until {until}: the range is empty")


def cmd_init(args: argparse.Namespace) -> int:
    actor = operations.check("init", _actor(args))
    store = _store(args)
    # The pipeline's own tables exist in production: create them only on request (a new environment), and
    # never alter an existing one. The embedded engine always gets all of them.
    with operations.logged(store, "init", actor, origin="cli", start_line=False) as op:
        created = store.init_schema(pipeline_tables=store.engine == "duckdb" or args.create_pipeline_tables)
        op.summary = [f"Created {', '.join(created)}." if created else "Nothing to create."]
    print(f"Schema ready at {store.location}: " + (f"created {', '.join(created)}" if created else "nothing to create"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    actor = operations.check("demo", _actor(args))
    extra = demo_mod.parse_scale(args.scale) if args.scale else 0
    store = _store(args)
    if store.engine != "duckdb" and args.replace:
        raise ValueError("--replace empties the pipeline's tables: it is refused on BigQuery, use a DuckDB file")
    store.init_schema()
    if not store.is_empty():
        if not args.replace:
            print(
                f"{store.location} already holds failure rows. Use --replace to empty the demo tables first, "
                "or choose another --db.",
                file=sys.stderr,
            )
            return 2
        from lib.store.schema import PIPELINE_TABLES

        for t in PIPELINE_TABLES:
            store.execute(f"DELETE FROM {t.ref} WHERE TRUE", label="demo-replace")
    progress = _Progress()
    started = time.monotonic()
    today = dt.datetime.now(dt.UTC).date()
    as_of = args.as_of or today
    if as_of > today + dt.timedelta(days=1):
        raise ValueError(f"--as-of {as_of} is after tomorrow: the demo would hold failures not recorded yet")
    result = demo_mod.seed(store, seed=args.seed, progress=progress, actor=actor, origin="cli", as_of=as_of)
    if extra:
        demo_mod.add_scale_rows(
            store,
            extra,
            last_date=demo_mod.last_day(result),
            seed=args.seed,
            players=sorted({p.lookup for p in result.players}),
            progress=progress,
            actor=actor,
            origin="cli",
        )
    print(
        f"Demo data in {store.location} ({time.monotonic() - started:.1f} s): "
        f"{len(result.schedule):,} scheduled games, "
        f"{len(result.gamebook):,} gamebook rows, {len(result.analytics):,} analytics rows, "
        f"{result.failure_rows + extra:,} failure rows"
    )
    if not args.skip_classify:
        # Every page has something to show: classify what the pipeline left unclassified (its own verdicts stay).
        report = classification.run(store, actor=actor, now=dt.datetime.now(dt.UTC), progress=progress, origin="cli",
                                    clock=utc_now)  # fmt: skip
        print(report.lines()[0])
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a YYYY-MM-DD date") from exc


def _bounded(name: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``, or a message naming the option."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{name} takes a whole number, not {text[:40]!r}") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be from {low:,} to {high:,}, not {value:,}")
        return value

    return parse


def _classifier_config(args: argparse.Namespace) -> ClassifierConfig:
    """Windows from TRIAGE_WINDOWS, then ``--window PROCESSOR=SPEC``; ``--lookback-days`` / ``--lookback-games``
    set the window of every processor for this run (both: the union)."""
    config = Settings.from_env().classifier_config()
    per_processor = dict(config.windows_by_processor)
    for text in args.window or ():
        name, sep, spec = text.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--window {text[:60]!r}: write PROCESSOR=WINDOWS, e.g. PlayerDailyCacheProcessor=5g,10g")
        per_processor[name.strip()] = parse_windows(spec)
        if name.strip() not in KNOWN_PROCESSORS and name.strip() != DEFAULT_WINDOW_KEY:
            print(f"warning: --window names {name.strip()[:60]!r}, not one of the pipeline's processors; it applies "
                  "only to failures recorded under exactly that name", file=sys.stderr)  # fmt: skip
    config = dataclasses.replace(config, windows_by_processor=per_processor)
    forced = []
    for flag, kind, size in (("--lookback-days", "days", args.lookback_days),
                             ("--lookback-games", "games", args.lookback_games)):  # fmt: skip
        if size is not None:
            try:
                forced.append(Window(kind, size))
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from exc
    if forced:
        config = dataclasses.replace(config, windows_by_processor={}, default_windows=tuple(forced))
    described = [f"default: {windows_label(config.windows(''))}"]
    described += [f"{name}: {windows_label(ws)}" for name, ws in sorted(config.windows_by_processor.items())]
    print("Windows: " + "; ".join(described), file=sys.stderr)
    return config


def _add_window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lookback-days",
        type=_bounded("--lookback-days", 1, MAX_WINDOW_DAYS),
        default=None,
        help="every processor's window: the last N days before the analysis date (default 14)",
    )
    p.add_argument(
        "--lookback-games",
        type=_bounded("--lookback-games", 1, MAX_WINDOW_GAMES),
        default=None,
        help="every processor's window: the last N games of the team (with --lookback-days: the union)",
    )
    p.add_argument(
        "--window",
        action="append",
        metavar="PROCESSOR=SPEC",
        help="a processor's window(s), e.g. PlayerDailyCacheProcessor=5g,10g,7d,14d (repeatable)",
    )


def cmd_classify(args: argparse.Namespace) -> int:
    actor = operations.check("reclassify" if args.all else "classify", _actor(args))
    _check_range(args.since, args.until)
    config = _classifier_config(args)
    store = _store(args, create=False)  # only init and demo create a database
    started = time.monotonic()
    report = classification.run(
        store,
        actor=actor,
        origin="cli",
        now=dt.datetime.now(dt.UTC),
        config=config,
        include_classified=args.all,
        since=args.since,
        until=args.until,
        batch_size=args.batch_size,
        progress=_Progress(),
        method=args.method,
        clock=utc_now,
    )
    for line in report.lines():
        print(line)
    print(f"({time.monotonic() - started:.1f} s)")
    return 0


def _filters(args: argparse.Namespace) -> Filters:
    _check_range(args.date_from, args.date_to)
    return Filters(
        date_from=args.date_from,
        date_to=args.date_to,
        tables=tuple(args.table or ()),
        processors=tuple(args.processor or ()),
        categories=tuple(args.category or ()),
        failure_types=tuple(args.type or ()),
        correctable=tuple(args.correctable or ()),
        statuses=tuple(args.status or ()),
        entity=args.entity or "",
        entity_exact=args.entity_id,
        hide_expected=not args.include_expected,
    )


def _warn_unknown_names(store: Store, filters: Filters) -> None:
    """A type or processor that matches nothing is most likely a typo: say so (the command still runs)."""
    types = {t.value for t in FailureType} | {UNCLASSIFIED}
    for name in filters.failure_types:
        if name not in types:
            print(f"warning: --type {name[:60]!r} is not a failure type (one of {', '.join(sorted(types))}); "
                  "it matches nothing", file=sys.stderr)  # fmt: skip
    if filters.processors:
        present = set(queries.choices(store, filters.with_(processors=())).processors)
        for name in filters.processors:
            if name not in present:
                print(f"warning: --processor {name[:60]!r} recorded no failure in the range; it matches nothing"
                      + (" (not one of the pipeline's processors)" if name not in KNOWN_PROCESSORS else ""),
                      file=sys.stderr)  # fmt: skip


def _has_filter(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) for name in (
        "date_from", "date_to", "table", "processor", "category", "type", "correctable", "status", "entity",
        "entity_id",
    ))  # fmt: skip


ITEM_FIELDS = ("key", "source_table", "processor_name", "item_date", "entity_id", "status", "failure_type",
               "is_correctable", "occurrences", "failure_category", "last_seen", "status_at")  # fmt: skip


def cmd_items(args: argparse.Namespace) -> int:
    filters = _filters(args)
    store = _store(args, create=False)
    _require_schema(store)
    _warn_unknown_names(store, filters)
    frames = (
        frame[list(ITEM_FIELDS)].assign(item_date=frame["item_date"].map(lambda d: d.isoformat()))
        for frame in queries.iter_items(store, filters)
    )
    out = sys.stdout
    if args.format == "csv":  # spreadsheet-safe, as the dashboard's download
        export.write_csv((export.readable_items(f) for f in frames), ITEM_FIELDS, out)
        return 0
    first = True
    out.write("[")
    for part in frames:
        text = part.to_json(orient="records", date_format="iso", force_ascii=False)
        if len(part):
            out.write(("" if first else ",") + text[1:-1])
            first = False
    out.write("]\n")
    return 0


INCIDENT_FIELDS = ("incident_id", "kind", "root_cause", "state", "open_items", "settled_items", "items", "players",
                   "processors", "processor_names", "categories", "game_date", "first_date", "last_date",
                   "first_seen", "age_days", "reruns")  # fmt: skip


def cmd_incidents(args: argparse.Namespace) -> int:
    """The incidents behind the filters' items (or one incident's items, with --incident), as JSON or CSV."""
    filters = _filters(args)
    if filters.statuses or filters.correctable:
        print("warning: --status and --correctable do not narrow incidents: an incident counts every item its cause "
              "explains, open and settled", file=sys.stderr)  # fmt: skip
    store = _store(args, create=False)
    _require_schema(store)
    _warn_unknown_names(store, filters)
    out = sys.stdout
    if args.incident is not None:
        try:
            which = incidents.IncidentId.parse(args.incident)
        except TriageError as exc:  # a bad argument, as a bad date is: exit 2
            raise ValueError(f"--incident: {exc}") from exc
        frame = incidents.incident_items(store, filters, which)
        if frame.empty:
            raise TriageError(f"No item in view belongs to incident {which.text[:120]!r}.",
                              "Widen --since/--until or the filters, or copy an id from the list.")  # fmt: skip
        fields = [*ITEM_FIELDS, "open_in_incident"]
        frame = frame.reindex(columns=fields).assign(
            item_date=lambda f: f["item_date"].map(lambda d: d.isoformat() if hasattr(d, "isoformat") else d)
        )
        if args.format == "csv":
            export.write_csv([export.readable_items(frame)], fields, out)
        else:
            out.write(frame.to_json(orient="records", date_format="iso", force_ascii=False) + "\n")
        return 0
    frame = incidents.incidents(store, filters, now=dt.datetime.now(dt.UTC), settled=args.settled)
    for column in ("game_date", "first_date", "last_date"):
        frame[column] = frame[column].map(lambda d: d.isoformat() if isinstance(d, dt.date) else None)
    frame["age_days"] = frame["age_days"].round(2)
    if args.format == "csv":
        export.write_csv([frame], INCIDENT_FIELDS, out)
        return 0
    records = frame[[*INCIDENT_FIELDS, "rerun_steps"]].to_json(orient="records", date_format="iso",
                                                                force_ascii=False)  # fmt: skip
    out.write(records + "\n")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    """Preview the re-run messages of an incident (or of one processor over a range); send them with --send."""
    if (args.incident is not None) == bool(args.processor_only):
        raise ValueError("say what to re-run: --incident ID, or --processor P with --since and --until")
    if args.processor_only and not (args.since and args.until):
        raise ValueError("--processor needs --since and --until (the dates to re-run)")
    _check_range(args.since, args.until)
    if args.send and not (args.note or "").strip():
        raise ValueError("--send needs --note TEXT: why the re-run is asked for (kept with the request)")
    if args.note and len(args.note.strip()) > 2000:
        raise ValueError(f"--note is {len(args.note.strip()):,} characters long; keep it under 2,000")
    if args.incident is not None:
        try:
            incidents.IncidentId.parse(args.incident)
        except TriageError as exc:
            raise ValueError(f"--incident: {exc}") from exc
    steps = _steps(args.steps)
    settings = reruns.RerunSettings.from_env()
    actor = require_resolver(_actor(args), what="request re-runs") if args.send else None
    store = _store(args, create=False)
    _require_schema(store)
    filters = Filters(date_from=args.since, date_to=args.until, hide_expected=not args.include_expected)
    if args.processor_only:
        _warn_unknown_names(store, filters.with_(processors=(args.processor_only,)))
    if args.send:
        store.init_schema(pipeline_tables=False)  # the request tables, on a database from before them
    now = dt.datetime.now(dt.UTC)
    if args.incident is not None:
        plan = reruns.plan_incident(store, filters, args.incident, settings, now=now, force=args.force)
    else:
        plan = reruns.plan_processor(store, filters, args.processor_only, settings, now=now, force=args.force)
    if steps is not None:
        full = plan
        plan = plan.only_steps(*steps)
        later = [n for n in full.steps if n > steps[1]]
        if later and plan.ends_with_registry:
            print(f"note: a registry fix starts no run: ask for steps {later[0]}-{later[-1]} once the name is fixed",
                  file=sys.stderr)  # fmt: skip
    for m in plan.skipped:
        print(f"pending already, not asked again: step {m.step} {m.stage} {m.data_date} "
              f"({', '.join(m.processors)}; request {', '.join(m.pending)}); --force asks again",
              file=sys.stderr)  # fmt: skip
    if not args.send:
        print(f"{plan.title}: {len(plan.messages)} message(s) over {len(plan.dates)} date(s)"
              f" (at most {settings.max_dates} per request)")  # fmt: skip
        for m in plan.messages:
            print(f"  {m.step}. {m.stage:<12} {m.data_date}  {', '.join(m.processors)}  -> {m.destination.label}"
                  f"  ({len(m.items)} item(s))")  # fmt: skip
            print(f"     {m.command(settings.pubsub_project or 'PROJECT')}")
        if len(plan.dates) > settings.max_dates:
            print(f"warning: {len(plan.dates)} dates are more than the {settings.max_dates} one request may cover "
                  "(TRIAGE_RERUN_MAX_DATES): narrow --since/--until before --send", file=sys.stderr)  # fmt: skip
        if not settings.configured:
            print("Nothing is configured to send these (TRIAGE_PUBSUB_PROJECT, TRIAGE_RERUN_*): --send records the "
                  "request, and the commands above send it by hand.")  # fmt: skip
        if plan.messages:
            print("Add --send --note TEXT to send them.")
        return 0
    sent = reruns.send(store, plan, actor, note=args.note, settings=settings, now=now)
    for o in sent.outcomes:
        tail = o["message_id"] or o["error"] or ""
        print(f"  {o['step']}. {o['stage']:<12} {o['data_date']}  {o['outcome']}  {tail}", file=sys.stderr)
    print(json.dumps({"request_id": sent.request_id, "sent": sent.sent, "failed": len(sent.failed),
                      "duplicates": sent.duplicates}))  # fmt: skip
    return 1 if sent.failed else 0


def _steps(text: str | None) -> tuple[int, int] | None:
    """``--steps``: ``N`` or ``FIRST-LAST``."""
    if text is None:
        return None
    first, _, last = text.strip().partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"--steps {text[:40]!r}: give a step or a range of steps, such as 2 or 1-2") from None
    if a < 1 or b < a:
        raise ValueError(f"--steps {text[:40]!r}: steps count from 1, and the first comes before the last")
    return a, b


def _require_schema(store: Store) -> None:
    """A read needs the dashboard's tables; it never creates them."""
    missing = [t for t in ("nba_processing.failure_resolutions",) if t not in store.existing_tables()]
    if missing:
        raise TriageError(
            f"{store.location} has no triage tables yet ({', '.join(missing)}).",
            "Create them with `python -m lib init --actor NAME` (pointing at the same database).",
        )


def cmd_resolve(args: argparse.Namespace) -> int:
    if args.item and _has_filter(args):
        raise ValueError("give --item KEY ... or filters, not both")
    if not args.item and not _has_filter(args):
        raise ValueError("say which items: --item KEY ... or at least one filter (for example --since/--until)")
    actor = require_person(_actor(args, person=True))
    scope = resolution.Scope.of_keys(args.item) if args.item else resolution.Scope(_filters(args))
    store = _store(args, create=False)
    _require_schema(store)
    if not args.item:
        _warn_unknown_names(store, scope.filters)
    unmatched = resolution.unmatched_keys(store, scope)
    if unmatched:
        print(f"{len(unmatched):,} of {len(scope.keys):,} item key(s) match no item:", file=sys.stderr)
        for key in unmatched[:20]:
            hint = "  (note the spaces around it)" if key != key.strip() else ""
            print(f"  {key!r}{hint}", file=sys.stderr)
        if len(unmatched) > 20:
            print(f"  ... and {len(unmatched) - 20:,} more", file=sys.stderr)
        if len(unmatched) == len(scope.keys):
            print("error: no listed key names an item; nothing was changed. "
                  "Copy keys from `python -m lib items` or the dashboard.", file=sys.stderr)  # fmt: skip
            return 1
    preview = resolution.preview(store, scope, args.to)
    if args.dry_run:
        print(f"Would mark {preview.count:,} item(s) {args.to} ({preview.already:,} already are).")
        for key in preview.sample:
            print(f"  {key}")
        return 0
    change = resolution.apply(store, scope, args.to, actor=actor, note=args.note, now=dt.datetime.now(dt.UTC),
                              origin="cli")  # fmt: skip
    print(f"Marked {change.changed:,} item(s) {change.to_status} as {actor.name} "
          f"({change.already:,} already were); batch {change.batch_id}.")  # fmt: skip
    if not change.synced:
        print("The failure rows' status columns are not in step yet: run `python -m lib sync-status`.")
    return 0


def cmd_autoresolve(args: argparse.Namespace) -> int:
    actor = operations.check("autoresolve", _actor(args))
    _check_range(args.since, args.until)
    config = _classifier_config(args)
    store = _store(args, create=False)
    report, resolved = resolution.autoresolve(store, actor=actor, now=dt.datetime.now(dt.UTC), since=args.since,
                                              until=args.until, progress=_Progress(), config=config,
                                              origin="cli", clock=utc_now)  # fmt: skip
    for line in report.lines():
        print(line)
    print(f"Resolved {resolved:,} item(s) whose data has arrived (actor: system).")
    return 0


def cmd_sync_status(args: argparse.Namespace) -> int:
    actor = operations.check("sync-status", _actor(args))
    _check_range(args.since, args.until)
    store = _store(args, create=False)
    store.init_schema(pipeline_tables=False)
    changed = resolution.sync_statuses(store, actor=actor, since=args.since, until=args.until, origin="cli")
    print(f"Brought {changed:,} failure row(s) in step with their items' status.")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    actor = operations.check("reindex", _actor(args))
    _check_range(args.since, args.until)
    store = _store(args, create=False)
    store.init_schema(pipeline_tables=False)
    with operations.logged(store, "reindex", actor, origin="cli", date_from=args.since, date_to=args.until) as op:
        done = index.reindex(store, args.since, args.until, actor=actor, progress=_Progress())
        op.summary = [f"{done.refreshed_dates:,} table-date(s), {done.items:,} item(s) indexed."]
    print(
        f"Rebuilt the item index at {store.location}: {done.refreshed_dates:,} table-date(s), "
        f"{done.items:,} item(s), in {done.seconds:.1f} s."
    )
    return 0


def _instant(text: str) -> dt.datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dashboard_url(text: str | None) -> str | None:
    """The dashboard's address for the digest's links: an http(s) address with a host, or nothing."""
    if not text or not text.strip():
        return None
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c in text for c in "\r\n\t "):
        raise ValueError(f"--dashboard-url {text[:80]!r} is not an http(s) address (e.g. https://triage.example.com)")
    return text.strip()


def _digest_path(text: str) -> Path:
    """Where the digest goes: a file name (``.md``; the JSON beside it), or ``digest.md`` inside a folder. Checked
    before the job runs, so that a path that cannot be written is refused before any work, not after."""
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / "digest.md"
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--digest {text[:120]!r}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or str(existing.resolve()).startswith(("/proc", "/sys", "/dev")):
        raise ValueError(f"--digest {text[:120]!r}: cannot write in {existing}")
    return path


def cmd_nightly(args: argparse.Namespace) -> int:
    """Classify, auto-resolve, sync, then the digest; one JSON line on stdout, progress on stderr."""
    _check_range(args.since, args.until)
    url = args.webhook if args.webhook is not None else os.environ.get("TRIAGE_WEBHOOK_URL", "")
    if url:
        webhook.check_url(url)
    dashboard = _dashboard_url(args.dashboard_url or os.environ.get("TRIAGE_DASHBOARD_URL"))
    digest = _digest_path(args.digest) if args.digest else None
    # Unattended work runs as ``system`` (where it is configured); a person may run it under their own name.
    actor = operations.check("nightly", SYSTEM if args.actor is None and not os.environ.get("TRIAGE_ACTOR")
                             else _actor(args))  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    if args.compare_to is not None and args.compare_to >= now:
        raise ValueError("--compare-to must be in the past")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    store = _store(args, create=False)
    thresholds = nightly.Thresholds(args.max_new_regressions, args.max_new_correctable)
    result = nightly.run(store, actor=actor, now=now, since=args.since, until=args.until, compare_to=args.compare_to,
                         thresholds=thresholds, config=_classifier_config(args), log=log,
                         progress=_Progress(), clock=utc_now)  # fmt: skip
    if result.failed_step:
        log(f"error: the {result.failed_step} step failed: {result.problem}")
        log("  What finished before it is kept; run the job again once the cause is fixed.")
    else:
        data = nightly.write_digest(result, digest, dashboard=dashboard, log=log) if digest else None
        if url:
            nightly.post_digest(result, data or nightly.digest_json(result, dashboard=dashboard), url, log=log,
                                timeout=args.webhook_timeout)  # fmt: skip
        for line in result.exceeded:
            log(f"attention: {line}")
    print(json.dumps(result.summary(), default=str), flush=True)
    return result.exit_code


def _add_filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (as on the dashboard; repeat an option for several values)")
    g.add_argument("--since", dest="date_from", type=_date, help="first date (YYYY-MM-DD)")
    g.add_argument("--until", dest="date_to", type=_date, help="last date (YYYY-MM-DD)")
    g.add_argument("--table", action="append", choices=[t.value for t in SourceTable])
    g.add_argument("--processor", action="append")
    g.add_argument("--category", action="append")
    g.add_argument("--type", action="append", help="failure type, or UNCLASSIFIED")
    g.add_argument("--correctable", action="append", choices=["correctable", "uncorrectable", "unknown"])
    g.add_argument("--status", action="append", choices=[s.value for s in ResolutionStatus])
    g.add_argument("--entity", help="entity id contains this text (a search)")
    g.add_argument("--entity-id", help="this entity id exactly (a player lookup, a team, a game id)")
    g.add_argument("--include-expected", action="store_true", help="include INSUFFICIENT_DATA and the like")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="NBA pipeline failure triage: command line")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser, *, writes: bool = True) -> argparse.ArgumentParser:
        p.add_argument("--db", help="DuckDB file (default: $TRIAGE_DB or data/triage.duckdb)")
        p.add_argument("--bigquery", metavar="PROJECT", help="use BigQuery in this project instead of a DuckDB file")
        if writes:
            p.add_argument("--actor", help="who runs this, for the record (default $TRIAGE_ACTOR; a scheduler: system)")
        return p

    p = with_db(sub.add_parser("init", help="create the schema (idempotent)"))
    p.add_argument(
        "--create-pipeline-tables",
        action="store_true",
        help="BigQuery: also create the pipeline's failure and evidence tables (a new environment)",
    )
    p.set_defaults(func=cmd_init)

    p = with_db(sub.add_parser("demo", help="write deterministic demo data"))
    p.add_argument("--seed", type=_bounded("--seed", 0, 2**31 - 1), default=7, help="random seed (default 7)")
    p.add_argument("--skip-classify", action="store_true", help="leave the new failures unclassified")
    p.add_argument("--scale", default="", help="extra synthetic failure rows for benchmarks, e.g. 1M or 10M")
    p.add_argument("--replace", action="store_true", help="empty the pipeline tables first")
    p.add_argument(
        "--as-of",
        type=_date,
        help="the demo's today: the season is placed to end the day before (default: today, UTC; "
        "2022-04-11 keeps the real 2021-22 dates)",
    )
    p.set_defaults(func=cmd_demo)

    p = with_db(sub.add_parser("classify", help="classify unclassified failures from the evidence tables"))
    _add_window_options(p)
    p.add_argument("--all", action="store_true", help="re-classify every failure, not only unclassified ones")
    p.add_argument("--since", type=_date, help="first analysis date to classify (YYYY-MM-DD)")
    p.add_argument("--until", type=_date, help="last analysis date to classify (YYYY-MM-DD)")
    p.add_argument(
        "--batch-size",
        type=_bounded("--batch-size", 1, classification.MAX_BATCH),
        default=None,
        help="items per batch, one transaction each (default 200000 in the engine, 20000 in Python)",
    )
    p.add_argument(
        "--method",
        choices=["engine", "oracle"],
        default="engine",
        help="engine: verdicts computed in the database (default); oracle: evidence loaded into Python, item by item",
    )
    p.set_defaults(func=cmd_classify)

    p = with_db(sub.add_parser("items", help="list failure items as JSON or CSV"), writes=False)
    p.add_argument("--format", choices=["json", "csv"], default="json")
    _add_filters(p)
    p.set_defaults(func=cmd_items)

    p = with_db(sub.add_parser("incidents", help="the root causes behind the failures, as JSON or CSV"), writes=False)
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--settled", action="store_true", help="also the incidents whose every item is settled")
    p.add_argument("--incident", metavar="ID", help="list this incident's items instead (an id the list printed)")
    _add_filters(p)
    p.set_defaults(func=cmd_incidents)

    p = with_db(sub.add_parser("rerun", help="preview (or --send) the re-run requests that fix an incident"))
    p.add_argument("--incident", metavar="ID", help="an incident id (python -m lib incidents)")
    p.add_argument("--processor", dest="processor_only", metavar="P", help="one processor's failed dates instead")
    p.add_argument("--since", type=_date, help="first item date (YYYY-MM-DD)")
    p.add_argument("--until", type=_date, help="last item date (YYYY-MM-DD)")
    p.add_argument("--send", action="store_true", help="send the messages (default: print the preview)")
    p.add_argument("--note", help="why (kept with the request; needed with --send)")
    p.add_argument("--force", action="store_true", help="ask again for processors and dates already pending")
    p.add_argument("--steps", metavar="FIRST-LAST", help="only these steps (e.g. 1-2: the source fix and phase 3; "
                   "the pipeline then runs the rest in order)")  # fmt: skip
    p.add_argument("--include-expected", action="store_true", help="include INSUFFICIENT_DATA and the like")
    p.set_defaults(func=cmd_rerun)

    p = with_db(sub.add_parser("resolve", help="change the status of items (recorded in the audit trail)"))
    p.add_argument("--to", required=True, choices=[s.value for s in TARGET_STATUSES])
    p.add_argument("--note", required=True, help="why (kept verbatim)")
    p.add_argument("--item", action="append", help="an item key TABLE:PROCESSOR:YYYY-MM-DD:ENTITY (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="say what would change and stop")
    _add_filters(p)
    p.set_defaults(func=cmd_resolve)

    p = with_db(sub.add_parser("autoresolve", help="re-classify, then resolve items whose data has arrived"))
    p.add_argument("--since", type=_date)
    p.add_argument("--until", type=_date)
    _add_window_options(p)
    p.set_defaults(func=cmd_autoresolve)

    p = with_db(sub.add_parser("sync-status", help="bring failure rows' resolution_status in step (retryable)"))
    p.add_argument("--since", type=_date)
    p.add_argument("--until", type=_date)
    p.set_defaults(func=cmd_sync_status)

    p = with_db(sub.add_parser("reindex", help="rebuild the item index and its daily rollups (all dates, or a range)"))
    p.add_argument("--since", type=_date, help="first item date to rebuild (default: the first)")
    p.add_argument("--until", type=_date, help="last item date to rebuild (default: the last)")
    p.set_defaults(func=cmd_reindex)

    p = with_db(sub.add_parser("nightly", help="classify, auto-resolve, sync, then a digest of what changed"))
    p.add_argument("--since", type=_date, help="first item date the job covers (default: all)")
    p.add_argument("--until", type=_date, help="last item date the job covers (default: all)")
    p.add_argument("--compare-to", type=_instant, help="what changed since this UTC date-time (default: 24 h ago)")
    p.add_argument("--digest", metavar="FILE", help="write the digest here (Markdown) and beside it as .json; "
                   "a folder: digest.md in it")  # fmt: skip
    p.add_argument(
        "--webhook", metavar="URL", help="post the digest (default $TRIAGE_WEBHOOK_URL; prefer the variable)"
    )
    p.add_argument("--webhook-timeout", type=_bounded("--webhook-timeout", 1, 300), default=10,
                   help="seconds to wait for the webhook per attempt (default 10)")  # fmt: skip
    p.add_argument("--dashboard-url", help="the dashboard's address, for links (default $TRIAGE_DASHBOARD_URL)")
    p.add_argument("--max-new-regressions", type=_bounded("--max-new-regressions", 0, 10**9),
                   help="exit 3 when more items than this regressed")  # fmt: skip
    p.add_argument("--max-new-correctable", type=_bounded("--max-new-correctable", 0, 10**9),
                   help="exit 3 when more items than this became correctable work")  # fmt: skip
    _add_window_options(p)
    p.set_defaults(func=cmd_nightly)
    return parser


def _gather_items(argv: Sequence[str], parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """The ``--item KEY`` and ``--item=KEY`` of a ``resolve`` taken out of the command line, in order. argparse
    takes time quadratic in the options it is given: 20,000 pasted keys took 15 s to parse before anything was
    checked. Only a command line made of the options' exact names and values that cannot be taken for options
    is gathered; anything else (an abbreviation, a value starting with '-', a missing value, ``--``) is left
    whole to argparse, which judges it as it always did."""
    argv = list(argv)
    if not argv or argv[0] != "resolve":  # the subcommand comes first (the parser has no options of its own)
        return argv, []
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [a for a in subparsers.choices["resolve"]._actions if a.option_strings]
    if any(a.nargs not in (None, 0) for a in options):
        return argv, []
    takes_value = {o for a in options if a.nargs is None for o in a.option_strings}
    known = {o for a in options for o in a.option_strings}
    rest, items, i = argv[:1], [], 1
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-"):
            rest.append(token)
            i += 1
            continue
        inline = token.startswith("--") and "=" in token
        name = token.split("=", 1)[0] if inline else token
        if name not in known:
            return argv, []
        taken = [token]
        if name in takes_value and not inline:
            if i + 1 == len(argv) or argv[i + 1].startswith("-"):
                return argv, []  # argparse decides whether that may be a value
            taken.append(argv[i + 1])
        i += len(taken)
        if name == "--item":
            items.append(taken[1] if len(taken) == 2 else token.split("=", 1)[1])
        else:
            rest += taken
    return rest, items


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    rest, items = _gather_items(sys.argv[1:] if argv is None else argv, parser)
    args = parser.parse_args(rest)
    if items:
        args.item = items  # argparse saw no --item: every one was gathered
    try:
        return int(args.func(args))
    except TriageError as exc:
        print(f"error: {exc.what}", file=sys.stderr)
        if exc.todo:
            print(f"  {exc.todo}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped reading: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted: each batch or change is one transaction; what finished is kept", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say it in one line (TRIAGE_DEBUG=1 shows the traceback)
        if os.environ.get("TRIAGE_DEBUG") == "1":
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:500]}", file=sys.stderr)
        print("  This is a bug in the triage tool; run again with TRIAGE_DEBUG=1 and report the traceback.",
              file=sys.stderr)  # fmt: skip
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
