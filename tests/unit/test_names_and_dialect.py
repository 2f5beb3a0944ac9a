import ast
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.demo import parse_scale
from lib.names import player_lookup
from lib.store import dialect
from lib.store.dialect import Dialect, SqlError, quote_identifier, row_hash

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, lookup",
    [
        ("LeBron James", "lebronjames"),
        ("Michael Porter Jr.", "michaelporterjr"),
        ("Nikola Jokić", "nikolajokic"),
        ("Kristaps Porziņģis", "kristapsporzingis"),
        ("Day'Ron Sharpe", "dayronsharpe"),
        ("Karl-Anthony Towns", "karlanthonytowns"),
        ("Ｆｕｌｌｗｉｄｔｈ Name", "fullwidthname"),
        ("Gary Trent Sr", "garytrentsr"),
    ],
)
def test_player_lookup_normalises_names_like_the_pipeline(name: str, lookup: str) -> None:
    assert player_lookup(name) == lookup


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT x FROM UNNEST(a) AS x WITH OFFSET AS o",
        "SELECT EXTRACT(DAYOFWEEK FROM d) FROM t",
        "SELECT ARRAY_AGG(x IGNORE NULLS) FROM t",
        "SELECT ARRAY_AGG(x ORDER BY y LIMIT 3) FROM t",
        "SELECT MAX_BY(x, y) FROM t",
        "SELECT a[OFFSET(n)] FROM t",
    ],
)
def test_constructs_that_transpile_wrongly_are_refused(sql: str) -> None:
    with pytest.raises(SqlError):
        Dialect("duckdb").render(sql)


def test_countif_counts_zero_over_no_rows_on_duckdb_as_on_bigquery() -> None:
    rendered = Dialect("duckdb").render("SELECT COUNTIF(x > 1) AS n FROM t")
    assert "COUNT_IF" not in rendered.upper()
    assert "COUNT(CASE WHEN" in rendered.upper()


def test_a_row_hash_hashes_the_values_themselves_on_duckdb_and_is_native_md5_on_bigquery() -> None:
    sql = "SELECT BIT_XOR(ROW_HASH(a, b, UNIX_MICROS(t))) AS h, ROW_HASH(c) AS g FROM x"
    duck = Dialect("duckdb").render(sql).upper()
    assert "HASH(A, B, EPOCH_US(T))" in duck and "HASH(C)" in duck and "MD5" not in duck and "ROW_HASH" not in duck
    big = Dialect("bigquery").render(sql).upper()
    assert big.count("MD5(") == 2 and "ROW_HASH" not in big and "FARM_FINGERPRINT" not in big


def test_the_row_hash_reference_tells_apart_values_that_only_a_separator_would_join() -> None:
    pairs = [(("a|b", "c"), ("a", "b|c")), (("a\\", "|b"), ("a\\|", "b")), ((None, "x"), ("\\N", "x")),
             ((True, 1), ("true", "1")), (("",), (None,))]  # fmt: skip
    for one, other in pairs[:-2] + pairs[-1:]:
        assert row_hash(one) != row_hash(other), (one, other)
    assert row_hash((True, 1)) == row_hash(("true", "1"))  # a value's text is what is hashed, as CAST gives it
    assert all(0 <= row_hash(v) < 2**60 for pair in pairs for v in pair)


def test_bigquery_rendering_qualifies_tables_with_project_and_configured_dataset() -> None:
    d = Dialect("bigquery", project="my-proj", datasets={"nba_processing": "proc_eu", "nba_raw": "nba_raw"})
    rendered = d.render("SELECT 1 FROM nba_processing.precompute_failures WHERE analysis_date = @d")
    assert "`my-proj`.proc_eu.precompute_failures" in rendered or "my-proj.proc_eu.precompute_failures" in rendered
    assert "@d" in rendered


def test_duckdb_rendering_drops_partitioning_and_uses_named_parameters() -> None:
    rendered = Dialect("duckdb").render("CREATE TABLE IF NOT EXISTS nba_raw.t (d DATE) PARTITION BY d CLUSTER BY d")
    assert "PARTITION" not in rendered.upper() and "CLUSTER" not in rendered.upper()
    assert "$x" in Dialect("duckdb").render("SELECT @x AS v")


@pytest.mark.parametrize("bad", ["a;b", "x y", "t`--", "", "1abc"])
def test_only_plain_identifiers_reach_sql_text(bad: str) -> None:
    with pytest.raises(SqlError):
        quote_identifier(bad)


@pytest.mark.parametrize("text, rows", [("250k", 250_000), ("1M", 1_000_000), ("10m", 10_000_000), ("1_000", 1000)])
def test_scale_accepts_human_row_counts(text: str, rows: int) -> None:
    assert parse_scale(text) == rows


def test_scale_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="row count"):
        parse_scale("lots")


def test_lib_never_imports_streamlit() -> None:
    offenders = []
    for path in (ROOT / "lib").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import lib.__main__, lib.demo, lib.store.queries, sys; print('streamlit' in sys.modules)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_dates_to_re_run_read_as_ranges() -> None:
    from lib.workqueue import compact_dates

    d = dt.date
    days = [d(2026, 11, 3), d(2026, 11, 1), d(2026, 11, 2), d(2026, 11, 7), d(2026, 11, 7)]
    assert compact_dates(days) == "Nov 1–3, 7"
    assert compact_dates([d(2026, 11, 30), d(2026, 12, 1), d(2026, 12, 5)]) == "Nov 30–Dec 1, 5"
    assert compact_dates([d(2026, 11, 30), d(2026, 12, 5)]) == "Nov 30; Dec 5"
    assert compact_dates([d(2025, 12, 31), d(2026, 1, 1)]) == "Dec 31 2025–Jan 1 2026"
    assert compact_dates([]) == ""


def test_the_csv_export_writes_counts_as_integers_and_lists_as_text() -> None:
    import io

    import pandas as pd

    from lib import export

    frame = pd.DataFrame({
        "expected_count": [4.0, None, 12.0], "occurrences": [1, 2, 3],
        "missing_json": ['["2022-01-01", "2022-01-03"]', "not json [", '[["nested"]]'],
    })  # fmt: skip
    out = io.StringIO()
    export.write_csv([export.readable_items(frame)], list(frame.columns), out)
    lines = out.getvalue().splitlines()
    assert lines[1] == "4,1,2022-01-01; 2022-01-03"
    assert lines[2] == ",2,not json [" and lines[3] == '12,3,"[[""nested""]]"'


# -- rendered statements kept on disk between processes (lib/store/dialect.py) -------------------------------------

_STATEMENTS = [
    "SELECT COUNTIF(x > 1) AS n FROM nba_processing.precompute_failures WHERE analysis_date = @d",
    "SELECT ROW_HASH(a, b) AS h FROM nba_raw.t",
    "CREATE TABLE IF NOT EXISTS nba_raw.t (d DATE) PARTITION BY d CLUSTER BY d",
    "SELECT 'a\\r\\nb\\rc' AS s",  # escapes a render writes as a raw CR LF and CR: read back unchanged
]
_DIALECTS = [Dialect("duckdb"), Dialect("bigquery", "proj", {"nba_processing": "proc_eu", "nba_raw": "raw"})]


def _cold() -> None:
    dialect._render.cache_clear()
    dialect._caches.clear()


def test_a_rendered_statement_is_kept_on_disk_and_read_back_as_rendered_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dialect.CACHE_ENV, str(tmp_path))
    fresh = {(d.engine, s): dialect._transpile(d, s) for d in _DIALECTS for s in _STATEMENTS}
    _cold()
    first = {(d.engine, s): d.render(s) for d in _DIALECTS for s in _STATEMENTS}
    kept = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert first == fresh and len(kept) == len(fresh)  # one file per statement and engine, nothing else left
    # A new process (nothing in memory) reads them: no sqlglot needed, the same text.
    _cold()
    monkeypatch.setattr(dialect, "_transpile", lambda d, s: pytest.fail(f"rendered again: {s}"))
    assert {(d.engine, s): d.render(s) for d in _DIALECTS for s in _STATEMENTS} == fresh
    # The same statement for another project is another file, never the first project's text.
    monkeypatch.undo()
    monkeypatch.setenv(dialect.CACHE_ENV, str(tmp_path))
    _cold()
    other = Dialect("bigquery", "elsewhere").render(_STATEMENTS[0])
    assert "elsewhere" in other and "proj" not in other


def test_a_damaged_kept_statement_is_rendered_again_and_an_unwritable_folder_only_means_no_keeping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dialect.CACHE_ENV, str(tmp_path))
    _cold()
    duck = Dialect("duckdb")
    want = duck.render(_STATEMENTS[0])
    (kept,) = (p for p in tmp_path.rglob("*") if p.is_file())
    for damage in ("", "-- another key\nSELECT 1", kept.read_text()[:20], "\udcff"):
        kept.write_text(damage, errors="surrogateescape")
        _cold()
        assert duck.render(_STATEMENTS[0]) == want, damage
        assert kept.read_text().startswith(f"-- {kept.name}\n")  # written again, whole
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv(dialect.CACHE_ENV, str(blocked))
    _cold()
    assert duck.render(_STATEMENTS[1]) == dialect._transpile(duck, _STATEMENTS[1])
    monkeypatch.setenv(dialect.CACHE_ENV, "")  # empty: in memory only
    _cold()
    assert duck.render(_STATEMENTS[2]) == dialect._transpile(duck, _STATEMENTS[2])
    with pytest.raises(SqlError):  # a forbidden construct is refused whether or not anything is kept
        duck.render("SELECT x FROM UNNEST([1]) AS x WITH OFFSET")


def test_another_version_renders_into_its_own_folder_and_stale_ones_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dialect.CACHE_ENV, str(tmp_path))
    _cold()
    Dialect("duckdb").render(_STATEMENTS[0])
    (mine,) = tmp_path.iterdir()
    assert mine.name == dialect._version()
    old, recent = tmp_path / "0123456789abcdef", tmp_path / "fedcba9876543210"
    foreign = tmp_path / "someone-elses-folder"  # TRIAGE_SQL_CACHE may name a folder that holds other things
    for folder, days in ((old, dialect.CACHE_STALE_DAYS + 1), (recent, 1), (foreign, 100)):
        (folder / "ab").mkdir(parents=True)
        (folder / "ab" / "abc").write_text("-- abc\nSELECT 1")
        os.utime(folder, (time.time() - days * 86400,) * 2)
    os.utime(mine, (time.time() - 100 * 86400,) * 2)  # this version's own folder is never removed
    (tmp_path / "a-broken-link").symlink_to(tmp_path / "nowhere")  # another thing's, unreadable: stops nothing
    cache = dialect.DiskCache(tmp_path)
    assert cache.prune() == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, recent.name, foreign.name, "a-broken-link"])
