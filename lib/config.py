"""Where the data is. Read from the environment (and, in the dashboard, Streamlit secrets) once."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.classifier import ClassifierConfig
from lib.model import Actor, Role, Window, parse_windows

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_ROOT / "data" / "triage.duckdb"


def _names(value: object) -> frozenset[str]:
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        items = ()
    return frozenset(str(v).strip().casefold() for v in items if str(v).strip())


#: The name of unattended work (the first start's demo, the nightly job, a scheduler's classification).
SYSTEM_NAME = "system"


@dataclass(frozen=True)
class Roles:
    """Who may act. Names (or e-mail addresses) are compared case-insensitively; anyone not listed gets
    ``default``. With nothing configured (the local default) everyone is a resolver.

    ``system`` is no person and gets no role from ``default``: it acts only for the operating-system accounts
    listed in ``system_users`` (``*``: any account), e.g. the service account a scheduler runs the nightly job
    as. With nothing configured at all (the local default) any account may; once anything is configured, only
    those listed. Listed among the viewers, it may do nothing."""

    resolvers: frozenset[str] = field(default_factory=frozenset)
    viewers: frozenset[str] = field(default_factory=frozenset)
    default: Role = Role.RESOLVER
    #: Operating-system accounts that may run unattended work as ``system``; None: not configured.
    system_users: frozenset[str] | None = None

    @property
    def configured(self) -> bool:
        return bool(self.resolvers or self.viewers or self.default is not Role.RESOLVER or self.system_users)

    def role_for(self, name: str) -> Role:
        key = name.strip().casefold()
        if key in self.viewers:
            return Role.VIEWER
        if key in self.resolvers:
            return Role.RESOLVER
        return self.default

    def actor(self, name: str) -> Actor:
        return Actor(name.strip(), self.role_for(name))

    def system_refusal(self, account: str) -> str:
        """Why ``system`` may not act for this operating-system account ('' when it may)."""
        if SYSTEM_NAME in self.viewers:
            return f"'{SYSTEM_NAME}' is listed among the viewers"
        allowed = self.system_users if self.system_users is not None else (None if self.configured else {"*"})
        if allowed and ("*" in allowed or account.strip().casefold() in allowed):
            return ""
        if not allowed:
            return (f"roles are configured and '{SYSTEM_NAME}' is not: list the accounts that run unattended work in "
                    "TRIAGE_SYSTEM_USERS (or system_users in [triage.roles])")  # fmt: skip
        return f"the account {account!r} is not among those that may act as '{SYSTEM_NAME}' (TRIAGE_SYSTEM_USERS)"

    @classmethod
    def from_mapping(cls, section: Mapping[str, object]) -> Roles:
        """``[triage.roles]`` in secrets, or TRIAGE_RESOLVERS / TRIAGE_VIEWERS / TRIAGE_DEFAULT_ROLE /
        TRIAGE_SYSTEM_USERS."""
        default = str(section.get("default") or Role.RESOLVER.value).strip().lower()
        if default not in {r.value for r in Role}:
            raise ValueError(f"Unknown default role {default!r}: use 'viewer' or 'resolver'")
        system = section.get("system_users")
        system_users = _names(system) if system is not None and str(system).strip() else None
        return cls(_names(section.get("resolvers")), _names(section.get("viewers")), Role(default), system_users)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Roles:
        env = os.environ if env is None else env
        return cls.from_mapping(
            {
                "resolvers": env.get("TRIAGE_RESOLVERS", ""),
                "viewers": env.get("TRIAGE_VIEWERS", ""),
                "default": env.get("TRIAGE_DEFAULT_ROLE", ""),
                "system_users": env.get("TRIAGE_SYSTEM_USERS", ""),
            }
        )


@dataclass(frozen=True)
class BigQuerySettings:
    project: str = ""
    location: str | None = None
    datasets: Mapping[str, str] = field(default_factory=dict)  # production name -> real name
    credentials_info: Mapping[str, object] | None = None  # service-account JSON; None: application default
    endpoint: str | None = None  # a local emulator
    maximum_bytes_billed: int | None = 50 * 1024**3


#: The key of the window that applies to every processor without one of its own.
DEFAULT_WINDOW_KEY = "default"


def parse_window_settings(text: str) -> dict[str, tuple[Window, ...]]:
    """``PROCESSOR=SPEC;PROCESSOR=SPEC;default=SPEC`` (SPEC e.g. ``5g,10g,7d,14d``), as in TRIAGE_WINDOWS."""
    out: dict[str, tuple[Window, ...]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, spec = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"TRIAGE_WINDOWS: {part.strip()[:60]!r} is not PROCESSOR=WINDOWS "
                "(e.g. PlayerDailyCacheProcessor=5g,10g,7d,14d)"
            )
        try:
            out[name.strip()] = parse_windows(spec)
        except ValueError as exc:
            raise ValueError(f"TRIAGE_WINDOWS, {name.strip()[:60]}: {exc}") from exc
    return out


def window_settings_text(section: Mapping[str, object]) -> str:
    """``[triage.windows]`` in secrets (processor = "5g,10g" or ["5g", "10g"]) as TRIAGE_WINDOWS text."""
    parts = []
    for name, value in section.items():
        spec = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{name}={spec}")
    return ";".join(parts)


@dataclass(frozen=True)
class Settings:
    engine: str = "duckdb"
    db_path: Path = DEFAULT_DB
    operator: str = ""
    bigquery: BigQuerySettings = field(default_factory=BigQuerySettings)
    windows: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)  # processor (or "default") -> windows

    def classifier_config(self) -> ClassifierConfig:
        """Each processor's completeness window as configured; the last 14 days where nothing is."""
        per_processor = {k: v for k, v in self.windows.items() if k != DEFAULT_WINDOW_KEY}
        return ClassifierConfig(
            windows_by_processor=per_processor, default_windows=self.windows.get(DEFAULT_WINDOW_KEY, ())
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """TRIAGE_ENGINE, TRIAGE_DB, TRIAGE_OPERATOR, TRIAGE_WINDOWS; for BigQuery TRIAGE_BQ_PROJECT,
        TRIAGE_BQ_LOCATION, TRIAGE_BQ_DATASET_PROCESSING / _RAW / _ANALYTICS / _REFERENCE, TRIAGE_BQ_MAX_BYTES,
        TRIAGE_BQ_ENDPOINT."""
        env = dict(os.environ if env is None else env)
        datasets = {
            name: env[f"TRIAGE_BQ_DATASET_{name.removeprefix('nba_').upper()}"]
            for name in ("nba_processing", "nba_raw", "nba_analytics", "nba_reference")
            if env.get(f"TRIAGE_BQ_DATASET_{name.removeprefix('nba_').upper()}")
        }
        engine = env.get("TRIAGE_ENGINE", "duckdb").strip().lower() or "duckdb"
        if engine == "duckdb" and "TRIAGE_DB" in env and not env["TRIAGE_DB"].strip():
            raise ValueError("TRIAGE_DB is set but empty (is a variable unset?): give a DuckDB file, or unset "
                             f"TRIAGE_DB for the default ({DEFAULT_DB})")  # fmt: skip
        max_bytes = env.get("TRIAGE_BQ_MAX_BYTES", "").strip().replace("_", "")
        if max_bytes and (not max_bytes.isdigit() or not 0 < int(max_bytes) < 2**63):
            raise ValueError(f"TRIAGE_BQ_MAX_BYTES must be a positive whole number of bytes, not {max_bytes[:40]!r}")
        return cls(
            engine=engine,
            db_path=Path(env.get("TRIAGE_DB") or DEFAULT_DB),
            operator=env.get("TRIAGE_OPERATOR", "").strip(),
            windows=parse_window_settings(env.get("TRIAGE_WINDOWS", "")),
            bigquery=BigQuerySettings(
                project=env.get("TRIAGE_BQ_PROJECT", "").strip(),
                location=env.get("TRIAGE_BQ_LOCATION") or None,
                datasets=datasets,
                endpoint=env.get("TRIAGE_BQ_ENDPOINT") or None,
                maximum_bytes_billed=int(max_bytes) if max_bytes else BigQuerySettings.maximum_bytes_billed,
            ),
        )
