"""How counts are shortened to fit a metric tile or a chart's cell at 1280 px, the exact count kept in the tile's
help and the cell's hover."""

from __future__ import annotations

import pytest

from ui.widgets import cell_count, md, short_count, tile, unbidi


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0"),
        (56_430, "56,430"),
        (99_999, "99,999"),
        (100_000, "100.0k"),
        (343_512, "343.5k"),
        (999_949, "999.9k"),
        (999_950, "1.00M"),
        (3_571_234, "3.57M"),
        (-343_512, "-343.5k"),
    ],
)
def test_a_count_fits_a_tile(n: int, shown: str) -> None:
    assert short_count(n) == shown
    assert len(shown.lstrip("-")) <= 6


def test_a_shortened_count_keeps_the_exact_figure_in_its_help() -> None:
    assert tile("Items", 343_512, "Failure items shown") == ("Items", "343.5k", "Failure items shown. Exactly 343,512.")
    assert tile("Items", 56_430, "Failure items shown") == ("Items", "56,430", "Failure items shown")
    said = tile("New items", 1_234_567, "Items first recorded after the comparison point.")[2]
    assert said == "Items first recorded after the comparison point. Exactly 1,234,567."


@pytest.mark.parametrize(
    ("n", "shown"),
    [(0, "0"), (988, "988"), (999, "999"), (1_000, "1.0k"), (4_085, "4.1k"), (9_949, "9.9k"), (9_950, "10k"),
     (40_147, "40k"), (999_499, "999k"), (999_500, "1.0M"), (25_462_139, "25.5M")],
)  # fmt: skip
def test_a_count_fits_a_chart_cell(n: int, shown: str) -> None:
    assert cell_count(n) == shown and len(shown) <= 5


def test_direction_controls_are_shown_as_their_codes_and_nothing_else_changes() -> None:
    """A note is shown verbatim, but a right-to-left override would reorder what follows it ("ok \u202eexe.txt" reads
    "ok txt.exe"): each bidirectional control is shown as its code, in plain text and in markdown alike."""
    note = "ok \u202eexe.txt evil\u202c done \u2066x\u2069 \u200f"
    assert unbidi(note) == "ok \\u202eexe.txt evil\\u202c done \\u2066x\\u2069 \\u200f"
    assert unbidi("plain: <b>x</b> [a](b) é ü 漢字\n\ttab") == "plain: <b>x</b> [a](b) é ü 漢字\n\ttab"
    assert md("a\u202eb") == "a\\\\u202eb"  # the code, its backslash escaped for markdown
