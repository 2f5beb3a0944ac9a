"""The command line's pre-pass over ``resolve --item``: the same keys, in the same order, as argparse alone."""

from __future__ import annotations

import pytest

from lib.__main__ import _gather_items, build_parser

KEY = "precompute_failures:PlayerDailyCacheProcessor:2021-12-31:lebronjames"


def _parsed(argv: list[str]) -> list[str] | None:
    rest, items = _gather_items(argv)
    args = build_parser().parse_args(rest)
    return [*items, *(args.item or [])] if items else args.item


@pytest.mark.parametrize(
    "argv",
    [
        ["resolve", "--to", "PERMANENT", "--note", "n", "--item", KEY],
        ["resolve", "--item", KEY, "--to", "PERMANENT", "--item=" + KEY + "x", "--note", "-", "--item", "y"],
        ["resolve", "--to", "PERMANENT", "--note", "n", "--item=-starts-with-a-dash", "--item", "k:k:k:k"],
        ["resolve", "--to", "PERMANENT", "--note", "n", "--processor", "P", "--item", "k:k:k:k"],
    ],
)
def test_the_keys_are_those_argparse_alone_reads_in_its_order(argv: list[str]) -> None:
    assert _parsed(argv) == build_parser().parse_args(argv).item


@pytest.mark.parametrize(
    "argv",
    [
        ["resolve", "--to", "PERMANENT", "--note", "--item=x", "y"],  # --note has no value
        ["resolve", "--to", "PERMANENT", "--note", "n", "--item"],
        ["resolve", "--to", "PERMANENT", "--note", "n", "--item", "--dry-run"],
        ["resolve", "--to", "PERMANENT", "--note", "n", "--processor", "--item", "k:k:k:k"],
    ],
)
def test_what_argparse_alone_refuses_is_still_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    with pytest.raises(SystemExit):
        build_parser().parse_args(_gather_items(argv)[0])


def test_only_resolve_is_touched_and_whatever_argparse_must_judge_is_left_to_it() -> None:
    assert _gather_items(["items", "--item", "x"]) == (["items", "--item", "x"], [])
    assert _gather_items(["init", "--actor", "resolve", "--item", "x"]) == (
        ["init", "--actor", "resolve", "--item", "x"],
        [],
    )
    argv = ["resolve", "--item", "a", "--item", "-c", "--", "--item", "d"]
    assert _gather_items(argv) == (["resolve", "--item", "-c", "--", "--item", "d"], ["a"])
    assert _gather_items(["resolve", "--item"]) == (["resolve", "--item"], [])
    with pytest.raises(SystemExit):  # still refused: no value
        build_parser().parse_args(_gather_items(["resolve", "--to", "PERMANENT", "--note", "n", "--item"])[0])


def test_twenty_thousand_keys_are_read_in_order() -> None:
    keys = [f"{KEY}{i}" for i in range(20_000)]
    argv = ["resolve", "--to", "PERMANENT", "--note", "n", *(a for k in keys for a in ("--item", k))]
    assert _parsed(argv) == keys
