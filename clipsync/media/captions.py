"""Caption files: WebVTT and SRT read, checked, sanitised and written as WebVTT.

Pure functions. `read_captions(data)` takes the bytes a person uploaded and returns
the cues, or raises `CaptionError` with a message they can act on; `render_vtt(cues)`
writes the WebVTT file ClipSync stores and serves (players read only that).

Why our own parser rather than a library (webvtt-py, srt, pysrt): those read timings
leniently and hand back cue text as it was written, markup and all. What matters
here is what they leave to the caller: refusing what is not a caption file,
bounding the work, and cleaning the text a browser will render. That is most of this
module, and the timing grammar itself is a few regular expressions.

What is kept and what is refused:

- UTF-8 only (a byte order mark is dropped); at most `MAX_BYTES` and `MAX_CUES`.
- WebVTT: the `WEBVTT` signature, then blocks separated by blank lines. Cues (an
  optional identifier, `start --> end [settings]`, text lines) are kept; NOTE blocks
  are dropped; STYLE and REGION blocks are dropped too (a style sheet from an
  upload is not ours to apply), and so are cue settings (position, alignment), which
  refer to regions and are cosmetic.
- SRT: numbered blocks, `00:00:01,000 --> 00:00:02,000`, text lines. Its `<font>`
  tags are dropped; `<b>`, `<i>`, `<u>` are kept.
- Every cue needs end > start, and cues must start in order (never earlier than the
  one before; players need not sort them).
- Cue text keeps only WebVTT's inline tags `b`, `i`, `u`, `c`, `v`, `lang`, `ruby`,
  `rt` and timestamp tags, rewritten from what was parsed (classes kept if they are
  plain words; a voice or language annotation escaped). Any other tag is dropped,
  keeping its text. `&`, `<` and `>` that are not markup are escaped.
- Anything that looks like script or HTML markup is refused, not stripped: a
  `<script>`, `<style>`, `<iframe>`, `<object>`, `<embed>`, `<img>`, `<svg>`, a
  `javascript:` URL or an `on…=` event attribute inside a tag. A caption file has no use
  for them, so their presence says the file is not what it claims to be, and the
  uploader hears which line it is rather than getting a silently changed file.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from clipsync.sizes import format_size

MAX_BYTES = 1024 * 1024
MAX_CUES = 10_000
# Longest time a caption can be shown at, in seconds (a cue past it is a typo).
MAX_TIME = 100 * 3600
# Longest cue text, in characters: room for several lines, never a book.
MAX_CUE_TEXT = 2000

KEPT_TAGS = frozenset({"b", "i", "u", "c", "v", "lang", "ruby", "rt"})
# Tags whose presence refuses the file (see the module docstring).
_DANGEROUS_TAGS = frozenset(
    {
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "img",
        "svg",
        "math",
        "link",
        "meta",
        "base",
        "form",
        "input",
        "button",
        "a",
        "video",
        "audio",
        "source",
        "frame",
        "frameset",
        "html",
        "body",
        "head",
        "template",
    }
)
_SCRIPT_URL = re.compile(r"javascript\s*:|vbscript\s*:|data\s*:\s*text/html", re.IGNORECASE)
_EVENT_ATTRIBUTE = re.compile(r"\bon[a-z]+\s*=", re.IGNORECASE)

_VTT_TIME = r"(?:(\d{2,3}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"^{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+(.*))?$")
_SRT_TIME = r"(\d{1,3}):([0-5]?\d):([0-5]?\d)[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}(?:[ \t]+.*)?$")
_TIMESTAMP_TAG = re.compile(rf"^{_VTT_TIME}$")
# A tag as WebVTT and SRT write it: `<b>`, `</i>`, `<c.yellow.bg>`, `<v Roger>`,
# `<00:01.500>`, `<font color="red">`. Anything else with `<` is text to escape.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*|\d[\d:.]*)((?:\.[^\s<>./]+)*)(?:[ \t]([^<>]*))?>")
_CLASS = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CaptionError(ValueError):
    """The file cannot be used as captions; the message says why, for the uploader."""


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    # Sanitised WebVTT cue text: safe to write into a .vtt file as it is.
    text: str


# --- reading ----------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """The file as text: UTF-8 (a BOM dropped), line endings made `\\n`."""
    if len(data) > MAX_BYTES:
        raise CaptionError(f"Caption files can be at most {format_size(MAX_BYTES)}.")
    if not data.strip():
        raise CaptionError("The caption file is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CaptionError(
            f"The caption file is not UTF-8 text (byte {error.start + 1}). "
            "Save it as UTF-8 and upload it again."
        ) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise CaptionError("The caption file holds binary data, not text.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_captions(data: bytes) -> list[Cue]:
    """The cues of a WebVTT or SRT file (told apart by WebVTT's signature), checked."""
    text = decode(data)
    first = text.split("\n", 1)[0]
    if first == "WEBVTT" or first.startswith(("WEBVTT ", "WEBVTT\t")):
        return parse_vtt(text)
    if first.lstrip().startswith("WEBVTT"):
        raise CaptionError("A WebVTT file starts with the line WEBVTT, alone or then a space.")
    return parse_srt(text)


def parse_vtt(text: str) -> list[Cue]:
    """The cues of a WebVTT file's text (already decoded)."""
    blocks = _blocks(text)
    header = blocks.pop(0) if blocks else []
    if not header or not (
        header[0][1] == "WEBVTT" or header[0][1].startswith(("WEBVTT ", "WEBVTT\t"))
    ):
        raise CaptionError("This is not a WebVTT file: its first line must be WEBVTT.")
    if any("-->" in line for _, line in header[1:]):
        raise CaptionError(
            f"Line {header[1][0]}: leave a blank line between the WEBVTT line and the first cue."
        )
    cues: list[Cue] = []
    for block in blocks:
        number, first = block[0]
        if first.startswith("NOTE") and first[4:5] in ("", " ", "\t"):
            continue
        if (
            first in ("STYLE", "REGION")
            and not cues
            and "-->" not in "".join(line for _, line in block)
        ):
            continue
        lines = block if "-->" in first else block[1:]
        if not lines:
            raise CaptionError(f"Line {number}: a cue identifier with no timing after it.")
        timing_number, timing = lines[0]
        match = _VTT_TIMING.match(timing)
        if not match:
            raise CaptionError(
                f"Line {timing_number}: not a cue timing. WebVTT writes "
                "00:01:02.500 --> 00:01:04.000 (hours optional, milliseconds with a dot)."
            )
        groups = match.groups()
        start, end = _seconds(*groups[0:4]), _seconds(*groups[4:8])
        cues.append(_cue(timing_number, start, end, lines[1:], cues))
    return _checked(cues)


def parse_srt(text: str) -> list[Cue]:
    """The cues of a SubRip (SRT) file's text (already decoded)."""
    cues: list[Cue] = []
    for block in _blocks(text):
        number, first = block[0]
        lines = block
        if "-->" not in first:
            if not first.strip().isdigit():
                raise CaptionError(
                    f"Line {number}: this is neither WebVTT (no WEBVTT line) nor SRT "
                    "(a cue number, then 00:00:01,000 --> 00:00:02,000)."
                )
            lines = block[1:]
        if not lines:
            raise CaptionError(f"Line {number}: a cue number with no timing after it.")
        timing_number, timing = lines[0]
        match = _SRT_TIMING.match(timing.strip())
        if not match:
            raise CaptionError(
                f"Line {timing_number}: not a cue timing. SRT writes 00:01:02,500 --> 00:01:04,000."
            )
        groups = match.groups()
        start, end = _seconds(*groups[0:4]), _seconds(*groups[4:8])
        cues.append(_cue(timing_number, start, end, lines[1:], cues))
    return _checked(cues)


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Blocks of (line number, line) separated by blank lines; trailing spaces removed."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip(" \t")
        if line:
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return (
        int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000
    )


def _cue(
    number: int, start: float, end: float, lines: list[tuple[int, str]], before: list[Cue]
) -> Cue:
    if len(before) >= MAX_CUES:
        raise CaptionError(f"A caption file can have at most {MAX_CUES} cues.")
    if end > MAX_TIME:
        raise CaptionError(f"Line {number}: a cue ends after {MAX_TIME // 3600} hours.")
    if end <= start:
        raise CaptionError(f"Line {number}: the cue ends before it starts.")
    if before and start < before[-1].start:
        raise CaptionError(
            f"Line {number}: the cue starts before the one above it. Cues must be in time order."
        )
    for line_number, line in lines:
        if "-->" in line:
            raise CaptionError(f"Line {line_number}: a cue's text cannot contain -->.")
    text = sanitise("\n".join(line for _, line in lines), lines[0][0] if lines else number)
    return Cue(start, end, text)


def _checked(cues: list[Cue]) -> list[Cue]:
    if not cues:
        raise CaptionError("The caption file has no cues.")
    return cues


# --- sanitising ---------------------------------------------------------------------------


def sanitise(text: str, line: int = 0) -> str:
    """Cue text with only WebVTT's safe inline tags, everything else escaped or dropped.

    Raises `CaptionError` for what looks like script or HTML markup (module docstring).
    """
    where = f"Line {line}: " if line else ""
    if len(text) > MAX_CUE_TEXT:
        raise CaptionError(f"{where}a cue's text can be at most {MAX_CUE_TEXT} characters.")
    text = _CONTROL.sub("", text)
    # Looked for with entities read too, so `&lt;script&gt;` is refused like `<script>`.
    for tag in re.finditer(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)([^<>]*)>?", html.unescape(text)):
        name = tag.group(1).lower()
        attributes = tag.group(2)
        if (
            name in _DANGEROUS_TAGS
            or _EVENT_ATTRIBUTE.search(attributes)
            or _SCRIPT_URL.search(attributes)
        ):
            raise CaptionError(
                f"{where}the caption text holds HTML markup (<{name}>), "
                "which caption files may not contain."
            )
    out: list[str] = []
    position = 0
    for match in _TAG.finditer(text):
        out.append(_text(text[position : match.start()]))
        out.append(_safe_tag(match))
        position = match.end()
    out.append(_text(text[position:]))
    return "".join(out)


def _text(text: str) -> str:
    """Text between tags: entities read, then `&`, `<` and `>` escaped again."""
    return _escape(html.unescape(text))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_tag(match: re.Match[str]) -> str:
    closing, name, classes, annotation = match.groups()
    if _TIMESTAMP_TAG.match(name):
        return "" if closing else f"<{name}>"
    name = name.lower()
    if name not in KEPT_TAGS:
        return ""  # <font>, <span>…: the tag goes, its text stays
    if closing:
        return f"</{name}>"
    kept = "".join(f".{c}" for c in classes.split(".")[1:] if _CLASS.match(c))
    note = (annotation or "").strip()
    if name in ("v", "lang") and note:
        return f"<{name}{kept} {_text(note)}>"
    return f"<{name}{kept}>"


# --- writing ------------------------------------------------------------------------------


def timestamp(seconds: float) -> str:
    """WebVTT's `HH:MM:SS.mmm`."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def render_vtt(cues: list[Cue]) -> str:
    """The WebVTT file ClipSync stores: signature, then each cue (no identifiers)."""
    blocks = ["WEBVTT"]
    for cue in cues:
        blocks.append(f"{timestamp(cue.start)} --> {timestamp(cue.end)}\n{cue.text}".rstrip("\n"))
    return "\n\n".join(blocks) + "\n"


def to_webvtt(data: bytes) -> str:
    """An uploaded WebVTT or SRT file as the checked, sanitised WebVTT to store."""
    return render_vtt(read_captions(data))
