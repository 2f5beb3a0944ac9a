"""The command line's pre-pass over ``resolve --item``: whatever argparse alone makes of a command line, the same
(every option's value, the keys in their order), or the same refusal."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.__main__ import _gather_items, build_parser

PARSER = build_parser()  # parse_args leaves a parser as it was: one for every case (40 ms to build)
KEY = "precompute_failures:PlayerDailyCacheProcessor:2021-12-31:lebronjames"


def _outcome(argv: list[str], *, gathered: bool) -> dict[str, Any] | str:
    """The parsed options (as ``main`` sees them), or 'refused'."""
    parser = PARSER
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            if not gathered:
                return {k: v for k, v in vars(parser.parse_args(argv)).items() if k != "func"}
            rest, items = _gather_items(argv, parser)
            args = parser.parse_args(rest)
    except SystemExit:
        return "refused"
    if items:
        assert args.item is None  # every --item was gathered, or none
        args.item = items
    return {k: v for k, v in vars(args).items() if k != "func"}


BASE = ["resolve", "--to", "PERMANENT", "--note", "n"]


@pytest.mark.parametrize(
    "argv",
    [
        [*BASE, "--item", KEY],
        ["resolve", "--item", KEY, "--to", "PERMANENT", f"--item={KEY}x", "--note", "n", "--item", "y"],
        [*BASE, "--item=-starts-with-a-dash", "--item", "k:k:k:k", "--item="],
        [*BASE, "--processor", "P", "--item", "k:k:k:k", "--dry-run", "--since", "2022-01-01"],
        # abbreviations, values argparse takes though they start with '-', mixed forms: left whole to argparse
        [*BASE, "--it", "a", "--item", "b"],
        [*BASE, "--item", "a", "--ite=b", "--item", "c"],
        [*BASE, "--item", "-5", "--item", "b"],
        [*BASE, "--item", "-", "--item", "b"],
        [*BASE, "--item", "-a b", "--item", "b"],
        # refused by argparse alone, and so still refused
        ["resolve", "--to", "PERMANENT", "--note", "--item=x", "y"],
        ["resolve", "--to", "PERMANENT", "--not", "--item", "k", "n"],
        [*BASE, "--proc", "--item", "k", "P"],
        [*BASE, "--ite", "--item", "k", "v"],
        [*BASE, "--item"],
        [*BASE, "--item", "--dry-run"],
        [*BASE, "--processor", "--item", "k"],
        [*BASE, "--item", "a", "b"],
        [*BASE, "--item", "a", "--", "--item", "d"],
        ["items", "--item", "x"],
    ],
)
def test_a_command_line_means_what_argparse_alone_makes_of_it(argv: list[str]) -> None:
    assert _outcome(argv, gathered=True) == _outcome(argv, gathered=False)


TOKENS = ["--item", "--ite", "--it", "--item=k9", "--note", "--not", "--to", "PERMANENT", "k1", "k2", "-5", "-",
          "--", "--dry-run", "--processor", "--proc", "P", "--since", "2022-01-01", "a b", "-a b", "-h"]  # fmt: skip


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=10))
def test_random_command_lines_mean_what_argparse_alone_makes_of_them(tokens: list[str]) -> None:
    argv = ["resolve", *tokens]
    assert _outcome(argv, gathered=True) == _outcome(argv, gathered=False)


def test_twenty_thousand_keys_are_read_in_order() -> None:
    keys = [f"{KEY}{i}" for i in range(20_000)]
    argv = [*BASE, *(a for k in keys for a in ("--item", k))]
    rest, items = _gather_items(argv, PARSER)
    assert rest == BASE and items == keys
