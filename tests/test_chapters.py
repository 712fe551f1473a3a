"""Chapters from "0:00 Title" lines of a description (clipsync/media/chapters.py)."""

from __future__ import annotations

import pytest

from clipsync.media.chapters import Chapter, chapters_json, parse_chapters


def test_timestamped_lines_make_chapters() -> None:
    description = (
        "A talk about boats.\n\n0:00 Intro\n1:30 - Setting up\n(12:05) Questions\n"
        "1:02:03 — The end\nSee 2:30 for the knot."
    )
    assert parse_chapters(description) == [
        Chapter(0, "Intro"),
        Chapter(90, "Setting up"),
        Chapter(725, "Questions"),
        Chapter(3723, "The end"),
    ]
    assert chapters_json("00:00 A\n0:10 B") == [
        {"start": 0, "title": "A"},
        {"start": 10, "title": "B"},
    ]


@pytest.mark.parametrize(
    "description",
    [
        None,
        "",
        "0:00 Only one",
        "0:05 Does not start at zero\n0:10 Next",
        "0:00 A\n0:20 B\n0:10 Back in time",
        "0:00 A\n0:00 Same time",
        "0:00 A\n1:75:00 Not a time",
        "Mentions 0:00 and 1:00 inside sentences only.",
    ],
)
def test_no_chapters_unless_valid(description: str | None) -> None:
    assert parse_chapters(description) == []


def test_chapters_past_the_end_are_left_out() -> None:
    assert parse_chapters("0:00 A\n0:20 B\n5:00 C", duration=60) == [
        Chapter(0, "A"),
        Chapter(20, "B"),
    ]
    assert parse_chapters("0:00 A\n2:00 B", duration=60) == []
