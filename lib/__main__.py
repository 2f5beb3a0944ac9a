"""Command line: ``python -m lib COMMAND --db PATH ...``. Run ``python -m lib --help``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from lib import classification
from lib import demo as demo_mod
from lib.classifier import ClassifierConfig
from lib.config import Settings
from lib.errors import TriageError
from lib.store import Store, open_store


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


def _store(args: argparse.Namespace) -> Store:
    settings = Settings.from_env()
    if args.db:
        settings = Settings(engine="duckdb", db_path=Path(args.db), operator=settings.operator)
    return open_store(settings)


def cmd_init(args: argparse.Namespace) -> int:
    store = _store(args)
    created = store.init_schema()
    print(f"Schema ready at {store.location}: " + (f"created {', '.join(created)}" if created else "nothing to create"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    store = _store(args)
    extra = demo_mod.parse_scale(args.scale) if args.scale else 0
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
    result = demo_mod.seed(store, seed=args.seed, progress=progress)
    if extra:
        demo_mod.add_scale_rows(
            store,
            extra,
            seed=args.seed,
            players=sorted({p.lookup for p in result.players}),
            progress=progress,
        )
    print(
        f"Demo data in {store.location} ({time.monotonic() - started:.1f} s): "
        f"{len(result.schedule):,} scheduled games, "
        f"{len(result.gamebook):,} gamebook rows, {len(result.analytics):,} analytics rows, "
        f"{result.failure_rows + extra:,} failure rows"
    )
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from exc


def cmd_classify(args: argparse.Namespace) -> int:
    store = _store(args)
    config = ClassifierConfig(lookback_days=args.lookback_days) if args.lookback_days else ClassifierConfig()
    if args.lookback_days is not None and args.lookback_days < 1:
        raise ValueError("--lookback-days must be at least 1")
    started = time.monotonic()
    report = classification.run(
        store,
        now=dt.datetime.now(dt.UTC),
        config=config,
        include_classified=args.all,
        since=args.since,
        until=args.until,
        batch_size=args.batch_size,
        progress=_Progress(),
    )
    for line in report.lines():
        print(line)
    print(f"({time.monotonic() - started:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="NBA pipeline failure triage: command line")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", help="DuckDB file (default: $TRIAGE_DB or data/triage.duckdb)")
        return p

    p = with_db(sub.add_parser("init", help="create the schema (idempotent)"))
    p.set_defaults(func=cmd_init)

    p = with_db(sub.add_parser("demo", help="write deterministic demo data"))
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--scale", default="", help="extra synthetic failure rows for benchmarks, e.g. 1M or 10M")
    p.add_argument("--replace", action="store_true", help="empty the pipeline tables first")
    p.set_defaults(func=cmd_demo)

    p = with_db(sub.add_parser("classify", help="classify unclassified failures from the evidence tables"))
    p.add_argument("--lookback-days", type=int, default=None, help="window before the analysis date (default 14)")
    p.add_argument("--all", action="store_true", help="re-classify every failure, not only unclassified ones")
    p.add_argument("--since", type=_date, help="first analysis date to classify (YYYY-MM-DD)")
    p.add_argument("--until", type=_date, help="last analysis date to classify (YYYY-MM-DD)")
    p.add_argument("--batch-size", type=int, default=20_000, help="items per batch (default 20000)")
    p.set_defaults(func=cmd_classify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
