"""Markdown people write (descriptions, comments) as sanitised HTML: what is kept, how
links and times render, and a battery of XSS attempts that must come out inert.
Pure functions, no app."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from clipsync.rich_text import comment_html, description_html

REL = 'rel="nofollow noopener noreferrer"'
SAFE_HREF = re.compile(r"(https?://[^\s/]+.*|mailto:.+|\?t=\d+)", re.IGNORECASE)
DESCRIPTION_TAGS = {"p", "br", "em", "strong", "code", "pre", "ul", "ol", "li", "a"}
DESCRIPTION_TAGS |= {"blockquote", "hr", "del", "s"}
SAFE_ATTRIBUTES = {"href", "rel", "target", "class", "data-seek", "start"}


class Elements(HTMLParser):
    """Every element and attribute in a fragment, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.found


def assert_inert(html: str, allowed_tags: set[str]) -> None:
    for tag, attributes in elements(html):
        assert tag in allowed_tags, (tag, html)
        assert set(attributes) <= SAFE_ATTRIBUTES, (attributes, html)
        href = attributes.get("href")
        if href is not None:
            assert SAFE_HREF.fullmatch(href), (href, html)
    lowered = html.lower()
    for marker in ("<script", "<svg", "<img", "<iframe", "<style", "<object", "<math", "<form"):
        assert marker not in lowered, html


def test_a_description_keeps_paragraphs_emphasis_lists_code_and_quotes() -> None:
    text = (
        "First *one* **two** ~~three~~\n\n- a\n- b\n\n3. c\n\n> said\n\n"
        "`x < y`\n\n```\nif a < b:\n```\n"
    )
    assert description_html(text) == (
        "<p>First <em>one</em> <strong>two</strong> <s>three</s></p>\n"
        "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
        '<ol start="3">\n<li>c</li>\n</ol>\n'
        "<blockquote>\n<p>said</p>\n</blockquote>\n"
        "<p><code>x &lt; y</code></p>\n"
        "<pre><code>if a &lt; b:\n</code></pre>"
    )


def test_links_open_in_a_new_tab_without_referrer_or_ranking() -> None:
    html = description_html("[site](https://example.org/a?b=1) and <mailto:a@example.org>")
    assert html == (
        f'<p><a href="https://example.org/a?b=1" target="_blank" {REL}>site</a> and '
        f'<a href="mailto:a@example.org" target="_blank" {REL}>mailto:a@example.org</a></p>'
    )


@pytest.mark.parametrize("render", [description_html, comment_html])
def test_times_become_seek_links_at_a_line_start_and_in_text(render) -> None:
    html = render("0:05 intro\n\nthe drop at 1:23, the end at 1:02:03.")
    assert '<a href="?t=5" class="timestamp" data-seek="5">0:05</a> intro' in html
    assert 'at <a href="?t=83" class="timestamp" data-seek="83">1:23</a>,' in html
    assert '<a href="?t=3723" class="timestamp" data-seek="3723">1:02:03</a>.' in html


@pytest.mark.parametrize(
    "text",
    ["10:30am", "host:8080", "1:75", "1:60:00", "12:30:45:10", "`1:23`", "[1:23](https://e.org)"],
)
def test_what_is_not_a_time_or_already_markup_is_left_alone(text: str) -> None:
    assert "data-seek" not in description_html(text)


def test_a_comment_gets_the_smaller_set_with_line_breaks() -> None:
    assert comment_html(
        "*a* `b`\nnext line\n\n# not a heading\n- not a list\n![i](https://e.org/i.png)"
    ) == (
        "<p><em>a</em> <code>b</code><br>\nnext line</p>\n"
        '<p># not a heading<br>\n- not a list<br>\n!<a href="https://e.org/i.png" target="_blank" '
        f"{REL}>i</a></p>"
    )


def test_no_headings_images_or_tables_in_a_description() -> None:
    html = description_html(
        "# Title\n\n![alt](https://e.org/i.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert_inert(html, DESCRIPTION_TAGS)
    assert all(tag in {"p", "a"} for tag, _ in elements(html))


def test_empty_text_renders_nothing() -> None:
    assert description_html("") == ""
    assert comment_html("") == ""


XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="https://e.org" onclick="alert(1)">x</a>',
    "<svg onload=alert(1)><circle/></svg>",
    "<svg><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<div style=\"background:url('javascript:alert(1)')\">x</div>",
    '<p style="position:fixed;top:0;left:0;width:100%;height:100%">cover</p>',
    "<style>body{display:none}</style>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;&#x61;vascript:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "<javascript:alert(1)>",
    "[x](//evil.example/phish)",
    "[x](/relative/path)",
    '[x](https://e.org "title" onmouseover="alert(1)")',
    '[x](https://e.org"onmouseover="alert(1))',
    "[x](<https://e.org> onclick=alert(1))",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;img src=x onerror=alert(1)&#62;",
    "<!-- --><script>alert(1)</script><!-- -->",
    '<a href="javascript:alert(1)">x</a>',
    '<form action="https://evil.example"><input name=p></form>',
    "<object data=javascript:alert(1)></object>",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "`</code><img src=x onerror=alert(1)>`",
    "*<img src=x onerror=alert(1)>*",
    "1:23<script>alert(1)</script>",
]


@pytest.mark.parametrize("text", XSS)
def test_xss_in_a_description_renders_inert(text: str) -> None:
    assert_inert(description_html(text), DESCRIPTION_TAGS)


@pytest.mark.parametrize("text", XSS)
def test_xss_in_a_comment_renders_inert(text: str) -> None:
    assert_inert(comment_html(text), {"p", "br", "em", "strong", "code", "a"})


def test_the_battery_itself_catches_markup() -> None:
    """The check above would notice live markup, so a pass means something."""
    for html in (
        '<img src=x onerror="a()">',
        '<a href="javascript:a()">x</a>',
        "<p style='x'>y</p>",
    ):
        with pytest.raises(AssertionError):
            assert_inert(html, DESCRIPTION_TAGS | {"img"})
