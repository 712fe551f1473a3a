"""Where text people write with markdown becomes HTML: the one place, so one rule.

Two layers, because either alone has failed somewhere before. markdown-it-py parses
with raw HTML switched off, so `<script>` in a description is text, and refuses
`javascript:`/`vbscript:`/`data:` link targets. nh3 (the ammonia sanitiser) then
keeps only the tags and attributes this module names, links only to http, https,
mailto or this page (`?t=`), so a parser bug or a rule enabled later cannot let markup
through. What comes out is safe to mark as `Markup` in a template.

Descriptions get paragraphs, emphasis, lists, quotes, links and code; comments a
smaller set (emphasis, code, links, line breaks), since a comment is a line in a
thread, not a document. Neither gets images (a tracking pixel in someone else's
page), tables or headings (which would outrank the page's own). In both, a time such
as `1:23` or `1:02:03` becomes a link that seeks the player (`data-seek`, in seconds)
and, without JavaScript, reloads the page at that time (`?t=`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

# A time in a video: m:ss or h:mm:ss, not part of a longer run of digits, colons or
# letters (so neither 12:30:45:10 nor 10:30am nor a port in host:8080 is one).
TIMESTAMP = re.compile(r"(?<![\w:])(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?![\w:])")
SEEK_HREF = re.compile(r"\?t=\d+")
LINK_REL = "nofollow noopener noreferrer"
URL_SCHEMES = frozenset({"http", "https", "mailto"})

DESCRIPTION_TAGS = frozenset(
    {"p", "br", "em", "strong", "s", "code", "pre", "ul", "ol", "li", "a", "blockquote", "hr"}
)
COMMENT_TAGS = frozenset({"p", "br", "em", "strong", "code", "a"})


def timestamp_seconds(match: re.Match[str]) -> int | None:
    """Seconds for a matched time; None when it is not a time (1:75, 1:60:00)."""
    hours, minutes, seconds = match.group(1), int(match.group(2)), int(match.group(3))
    if seconds >= 60 or (hours is not None and minutes >= 60):
        return None
    return (int(hours or 0) * 60 + minutes) * 60 + seconds


def timestamp_tokens(text: str, template: Token) -> list[Token]:
    """`text` as text tokens with each time in it made a seek link."""
    tokens: list[Token] = []
    position = 0
    for match in TIMESTAMP.finditer(text):
        seconds = timestamp_seconds(match)
        if seconds is None:
            continue
        if match.start() > position:
            tokens.append(text_token(text[position : match.start()], template))
        link = Token("link_open", "a", 1)
        link.attrs = {"href": f"?t={seconds}", "class": "timestamp", "data-seek": str(seconds)}
        tokens += [link, text_token(match.group(0), template), Token("link_close", "a", -1)]
        position = match.end()
    if position < len(text):
        tokens.append(text_token(text[position:], template))
    return tokens


def text_token(content: str, template: Token) -> Token:
    token = Token("text", "", 0, level=template.level)
    token.content = content
    return token


def link_timestamps(state: StateCore) -> None:
    """A core rule: times in plain text become seek links; not inside links or code."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        inside_link = 0
        for token in block.children:
            if token.type == "link_open":
                inside_link += 1
            elif token.type == "link_close":
                inside_link -= 1
            if token.type == "text" and not inside_link and TIMESTAMP.search(token.content):
                children += timestamp_tokens(token.content, token)
            else:
                children.append(token)
        block.children = children


def render_link_open(self, tokens, index, options, env) -> str:
    """Links people wrote open in a new tab and pass on neither referrer nor ranking.

    Seek links (`?t=`) stay in the page: player.js seeks instead of following them.
    """
    token = tokens[index]
    if not str(token.attrGet("href") or "").startswith("?t="):
        token.attrSet("target", "_blank")
        token.attrSet("rel", LINK_REL)
    return self.renderToken(tokens, index, options, env)


def parser(rules: list[str], *, breaks: bool) -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "breaks": breaks, "linkify": False})
    md.enable(rules)
    md.core.ruler.push("link_timestamps", link_timestamps)
    md.add_render_rule("link_open", render_link_open)
    return md


DESCRIPTION_PARSER = parser(
    [
        "paragraph",
        "newline",
        "escape",
        "backticks",
        "emphasis",
        "strikethrough",
        "link",
        "autolink",
        "entity",
        "list",
        "blockquote",
        "hr",
        "code",
        "fence",
    ],
    breaks=False,
)
COMMENT_PARSER = parser(
    ["paragraph", "newline", "escape", "backticks", "emphasis", "link", "autolink", "entity"],
    breaks=True,
)


def allowed_href(href: str) -> bool:
    """A seek link to this page, or an absolute http(s) or mailto address.

    Relative and scheme-relative (`//host`) targets are refused too: a description
    is shown on the watch page and the embed page, where a relative link means
    different things, and `//host` hides where it goes.
    """
    if SEEK_HREF.fullmatch(href):
        return True
    parts = urlsplit(href)
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        return False
    return bool(parts.path) if scheme == "mailto" else bool(parts.netloc)


def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """Keep an attribute only with a value this module itself writes."""
    if attribute == "href":
        return value if allowed_href(value) else None
    if attribute == "rel":
        return value if value == LINK_REL else None
    if attribute == "target":
        return value if value == "_blank" else None
    if attribute == "class":
        return value if value == "timestamp" else None
    if attribute == "data-seek":
        return value if value.isdigit() else None
    if attribute == "start":
        return value if value.isdigit() else None
    return value


def cleaner(tags: frozenset[str]) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(tags),
        clean_content_tags={"script", "style"},
        attributes={"a": {"href", "rel", "target", "class", "data-seek"}, "ol": {"start"}},
        attribute_filter=attribute_filter,
        strip_comments=True,
        # The renderer sets rel on links people wrote; a seek link to this page needs none.
        link_rel=None,
        url_schemes=set(URL_SCHEMES),
    )


DESCRIPTION_CLEANER = cleaner(DESCRIPTION_TAGS)
COMMENT_CLEANER = cleaner(COMMENT_TAGS)


def description_html(text: str) -> str:
    """A video description's markdown as sanitised HTML, safe to mark as Markup."""
    return DESCRIPTION_CLEANER.clean(DESCRIPTION_PARSER.render(text or "")).strip()


def comment_html(text: str) -> str:
    """A comment's markdown (the smaller subset) as sanitised HTML, safe as Markup."""
    return COMMENT_CLEANER.clean(COMMENT_PARSER.render(text or "")).strip()
