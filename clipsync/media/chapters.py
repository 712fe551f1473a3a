"""Chapters from a video's description: lines that start with a timestamp.

The convention people know from other video sites:

    0:00 Intro
    1:30 Setting up
    12:05 Questions

A description has chapters when at least `MIN_CHAPTERS` of its lines start with a
timestamp (`M:SS`, `MM:SS` or `H:MM:SS`, optionally followed by ` - ` or a similar
separator), the first of them is at 0:00, and they go strictly forward. Otherwise it
has none: a description that merely mentions a time ("see 2:30") shows no chapters
rather than misleading ones. Pure functions.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

MIN_CHAPTERS = 2
MAX_CHAPTERS = 100
MAX_TITLE = 100

_LINE = re.compile(
    r"^\s*[\[(]?(?:(\d{1,2}):)?(\d{1,2}):([0-5]\d)[\])]?(?:\s*[-\u2013\u2014:|.]\s*|\s+)(\S.*)$"
)


@dataclass(frozen=True)
class Chapter:
    start: int  # seconds
    title: str


def parse_chapters(description: str | None, duration: float | None = None) -> list[Chapter]:
    """The chapters a description lists, or [] when it does not list valid ones.

    With `duration`, chapters starting at or after the end are left out (a typo in a
    later line should not make the whole list go away).
    """
    chapters: list[Chapter] = []
    for line in (description or "").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        hours, minutes, seconds, title = match.groups()
        if hours is not None and int(minutes) > 59:
            continue  # 1:75:00 is not a time
        start = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
        chapters.append(Chapter(start, title.strip()[:MAX_TITLE]))
    if duration:
        chapters = [c for c in chapters if c.start < duration]
    if len(chapters) < MIN_CHAPTERS or chapters[0].start != 0:
        return []
    if any(b.start <= a.start for a, b in itertools.pairwise(chapters)):
        return []
    return chapters[:MAX_CHAPTERS]


def chapters_json(
    description: str | None, duration: float | None = None
) -> list[dict[str, object]]:
    """`[{"start": seconds, "title": …}]`, what the video's JSON carries."""
    return [{"start": c.start, "title": c.title} for c in parse_chapters(description, duration)]
