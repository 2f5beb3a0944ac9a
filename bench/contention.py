"""How long an operator's status change waits behind a long classification, with several writers at once.

    python bench/contention.py [--writers 8] [--rounds 2] [--dir bench/out]

On the demo season (the embedded engine, one file): (a) the baseline, each of --writers ``resolve`` command
lines run one after another with nothing else running; (b) as many resolves started together with nothing
else running; (c) as many started together while a ``classify --all`` of the whole season runs (started once
its first batch is written). Each resolve is its own process, as an operator's dashboard and a scheduler's
job are. Prints the median and the slowest resolve of each, as times and as ratios against the baseline's
median, and the classification's batches (the file is handed over between batches of about two seconds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.model import Filters, Page  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402
from lib.store import queries as q  # noqa: E402


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lib", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _resolve(db: Path, key: str, i: int) -> subprocess.Popen[str]:
    return _cli("resolve", "--db", str(db), "--to", "INVESTIGATING", "--actor", f"writer{i}",
                "--note", "bench: contention", "--item", key)  # fmt: skip


def _timed(procs: list[tuple[float, subprocess.Popen[str]]]) -> list[float]:
    times = []
    for started, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a resolve failed ({proc.returncode}): {err[-400:]}")
        times.append(time.monotonic() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="triage-contention-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "contention.duckdb"
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    seeded = subprocess.run([sys.executable, "-m", "lib", "demo", "--db", str(db), "--actor", "system",
                             "--skip-classify"], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    if seeded.returncode:
        raise SystemExit(seeded.stderr[-400:])
    wanted = args.writers * (args.rounds + 2)
    keys = list(q.list_items(DuckDBStore(db), Filters(hide_expected=False), Page(1, wanted))["key"])
    baseline: list[float] = []
    for i in range(args.writers):
        started = time.monotonic()
        baseline += _timed([(started, _resolve(db, keys[args.writers + i], i))])
    together = _timed([(time.monotonic(), _resolve(db, key, i)) for i, key in enumerate(keys[: args.writers])])
    waits: list[float] = []
    batches = 0
    for r in range(args.rounds):
        classify = _cli("classify", "--db", str(db), "--actor", "system", "--all")
        assert classify.stderr is not None
        for line in classify.stderr:
            if "Classified" in line:
                break
        group = keys[args.writers * (r + 2) : args.writers * (r + 3)]
        waits += _timed([(time.monotonic(), _resolve(db, key, i)) for i, key in enumerate(group)])
        rest = classify.stderr.read()
        classify.wait()
        batches += rest.count("Classified") + 1
    base = statistics.median(baseline)
    print(f"{args.writers} writers, {args.rounds} round(s), {len(keys)} items touched, database {db}")
    print(f"{'':44} {'median':>8} {'max':>8} {'median/base':>12} {'max/base':>9}")
    print(f"{'resolve alone (baseline)':44} {base:8.2f} {max(baseline):8.2f} {1.0:12.1f} {max(baseline) / base:9.1f}")
    print(f"{'resolve, all at once, nothing else running':44} {statistics.median(together):8.2f} "
          f"{max(together):8.2f} {statistics.median(together) / base:12.1f} {max(together) / base:9.1f}")  # fmt: skip
    print(f"{'resolve, all at once, behind classify --all':44} {statistics.median(waits):8.2f} {max(waits):8.2f} "
          f"{statistics.median(waits) / base:12.1f} {max(waits) / base:9.1f}")  # fmt: skip
    print(f"classification batches per run: {batches / args.rounds:.0f}")


if __name__ == "__main__":
    main()
