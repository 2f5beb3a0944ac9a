"""Start the dashboard: ``python -m ui.serve [streamlit run options]`` (what ``make run`` does).

This app declares its pages with ``st.navigation`` only. Streamlit 1.67 still treats a folder named
``pages`` as a legacy multipage app until the first script run of the server calls ``st.navigation``, so
the very first visitor of a deep link (``/player?player=...``) would see a "Page not found" notice. Saying
up front that the folder is not a legacy pages folder avoids it; see pages/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str] | None = None) -> None:
    PagesManager.uses_pages_directory = False
    cli.main(["run", str(APP), *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
