"""Where the data is. Read from the environment (and, in the dashboard, Streamlit secrets) once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_ROOT / "data" / "triage.duckdb"


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
