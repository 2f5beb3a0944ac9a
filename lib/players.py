"""Finding a player and his failure items."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lib.model import Filters, Page
from lib.store import queries as q
from lib.store.base import Store

_SEARCH = """
SELECT player_lookup, ANY_VALUE(player_name HAVING MAX game_date) AS player_name,
  ANY_VALUE(team_abbr HAVING MAX game_date) AS team, COUNT(*) AS rows_listed, MAX(game_date) AS last_date
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @date_from AND @date_to
  AND (STRPOS(player_lookup, @lookup) > 0 OR STRPOS(LOWER(player_name), LOWER(@text)) > 0)
  AND COALESCE(name_resolution_status, 'resolved') = 'resolved'
GROUP BY player_lookup
ORDER BY rows_listed DESC, player_lookup
LIMIT @n"""


def search(store: Store, text: str, start: dt.date, end: dt.date, *, limit: int = 12) -> pd.DataFrame:
    """Players whose lookup or name contains the text (accents and case ignored in the lookup)."""
    from lib.names import player_lookup

    cleaned = text.strip()[:100]
    if not cleaned:
        return pd.DataFrame(columns=["player_lookup", "player_name", "team", "rows_listed", "last_date"])
    params = {"date_from": start, "date_to": end, "lookup": player_lookup(cleaned) or cleaned, "text": cleaned,
              "n": limit}  # fmt: skip
    return store.query(_SEARCH, params, label="player-search")


def items(store: Store, lookup: str, filters: Filters, *, limit: int = 1000) -> pd.DataFrame:
    """His failure items in the date range (all tables, expected ones included), newest first: his own, never those of
    a player whose lookup contains his (``goranbrown`` is not ``goranbrownjr``)."""
    scope = Filters(date_from=filters.date_from, date_to=filters.date_to, entity_exact=lookup, hide_expected=False)
    return q.list_items(store, scope, Page(1, limit, "newest date"))
