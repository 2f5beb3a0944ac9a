"""Where the data is. Read from the environment (and, in the dashboard, Streamlit secrets) once."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.model import Actor, Role

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


@dataclass(frozen=True)
class Roles:
    """Who may act. Names (or e-mail addresses) are compared case-insensitively; anyone not listed gets
    ``default``. With nothing configured (the local default) everyone is a resolver."""

    resolvers: frozenset[str] = field(default_factory=frozenset)
    viewers: frozenset[str] = field(default_factory=frozenset)
    default: Role = Role.RESOLVER

    def role_for(self, name: str) -> Role:
        key = name.strip().casefold()
        if key in self.viewers:
            return Role.VIEWER
        if key in self.resolvers:
            return Role.RESOLVER
        return self.default

    def actor(self, name: str) -> Actor:
        return Actor(name.strip(), self.role_for(name))

    @classmethod
    def from_mapping(cls, section: Mapping[str, object]) -> Roles:
        """``[triage.roles]`` in secrets, or TRIAGE_RESOLVERS / TRIAGE_VIEWERS / TRIAGE_DEFAULT_ROLE."""
        default = str(section.get("default") or Role.RESOLVER.value).strip().lower()
        if default not in {r.value for r in Role}:
            raise ValueError(f"Unknown default role {default!r}: use 'viewer' or 'resolver'")
        return cls(_names(section.get("resolvers")), _names(section.get("viewers")), Role(default))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Roles:
        env = os.environ if env is None else env
        return cls.from_mapping(
            {
                "resolvers": env.get("TRIAGE_RESOLVERS", ""),
                "viewers": env.get("TRIAGE_VIEWERS", ""),
                "default": env.get("TRIAGE_DEFAULT_ROLE", ""),
            }
        )


@dataclass(frozen=True)
class Settings:
    engine: str = "duckdb"
    db_path: Path = DEFAULT_DB
    operator: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            engine=env.get("TRIAGE_ENGINE", "duckdb").strip().lower() or "duckdb",
            db_path=Path(env.get("TRIAGE_DB") or DEFAULT_DB),
            operator=env.get("TRIAGE_OPERATOR", "").strip(),
        )
