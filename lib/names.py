"""Player name normalisation, as the pipeline does it (``player_lookup``)."""

from __future__ import annotations

import re
import unicodedata

_SUFFIXES = {"jr": "jr", "jr.": "jr", "sr": "sr", "sr.": "sr"}


def player_lookup(name: str) -> str:
    """NFKC, accents removed, case folded, ``jr``/``sr`` kept, everything but a-z and 0-9 removed.

    >>> player_lookup("Michael Porter Jr.")
    'michaelporterjr'
    >>> player_lookup("Nikola Jokić")
    'nikolajokic'
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.casefold()
    words = [(_SUFFIXES.get(w, w)) for w in text.split()]
    return re.sub(r"[^a-z0-9]", "", "".join(words))
