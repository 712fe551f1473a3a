"""Caption files read, checked, sanitised and written as WebVTT; language tags; the
master playlist's SUBTITLES group. Pure functions, no app."""

from __future__ import annotations

import pytest

from clipsync.media import captions, languages
from clipsync.media.captions import MAX_BYTES, MAX_CUES, CaptionError, to_webvtt
from clipsync.media.playlists import SubtitleTrack, master_with_subtitles, subtitle_playlist

SRT = (
    '\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<font color="red">Hello</font> & <i>world</i>\r\n'
    "\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\n<b>a < b</b>\r\nsecond line\r\n"
)
VTT = (
    "WEBVTT - a title\nKind: captions\n\nSTYLE\n::cue { color: red }\n\nNOTE a comment\n\n"
    "intro\n00:01.000 --> 00:02.000 align:start position:10%\n"
    "<v.loud Roger>Hi <c.yellow.bg>there</c> <00:01.500>now <ruby>漢<rt>kan</rt></ruby> "
    "<lang en-GB>colour</lang> <u>u</u>\n\n"
    "01:00:00.000 --> 01:00:01.000\nx &lt;y&gt; &amp; z\n"
)


def test_srt_is_converted_to_webvtt_with_a_bom_dropped_and_font_tags_stripped() -> None:
    assert to_webvtt(SRT.encode()) == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.500\nHello &amp; <i>world</i>\n\n"
        "00:00:03.000 --> 00:00:04.000\n<b>a &lt; b</b>\nsecond line\n"
    )


def test_webvtt_keeps_its_safe_inline_tags_and_drops_styles_notes_and_settings() -> None:
    assert to_webvtt(VTT.encode()) == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\n"
        "<v.loud Roger>Hi <c.yellow.bg>there</c> <00:01.500>now <ruby>漢<rt>kan</rt></ruby> "
        "<lang en-GB>colour</lang> <u>u</u>\n\n"
        "01:00:00.000 --> 01:00:01.000\nx &lt;y&gt; &amp; z\n"
    )


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("<span class=x>plain</span>", "plain"),  # unknown tag: dropped, its text kept
        ("<c.ok.b@d>x</c>", "<c.ok>x</c>"),  # a class that is not a plain word goes
        ("<v Bob & Alice>hi", "<v Bob &amp; Alice>hi"),
        ("5 > 3 and 2 < 4", "5 &gt; 3 and 2 &lt; 4"),
        ("javascript: the good parts", "javascript: the good parts"),  # text, not a URL
    ],
)
def test_cue_text_is_sanitised(text: str, kept: str) -> None:
    vtt = to_webvtt(f"WEBVTT\n\n00:01.000 --> 00:02.000\n{text}\n".encode())
    assert vtt.split("\n")[3] == kept


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<img src=x onerror=alert(1)>",
        "<b onclick=alert(1)>hi</b>",
        '<c style="background:url(javascript:alert(1))">x</c>',
        "<iframe src=//evil></iframe>",
        "<svg/onload=alert(1)>",
        "< SCRIPT >x",
    ],
)
def test_script_and_html_markup_refuse_the_file(text: str) -> None:
    with pytest.raises(CaptionError, match="Line 4: the caption text holds HTML markup"):
        to_webvtt(f"WEBVTT\n\n00:01.000 --> 00:02.000\n{text}\n".encode())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfeW\x00E\x00", "not UTF-8"),
        (b"just some text\n", "neither WebVTT"),
        (b"WEBVTT\n", "no cues"),
        (b"WEBVTTX\n\n00:01.000 --> 00:02.000\nx", "starts with the line WEBVTT"),
        (b"WEBVTT\n00:01.000 --> 00:02.000\nx", "blank line between"),
        (b"WEBVTT\n\n00:02.000 --> 00:01.000\nx", "Line 3: the cue ends before it starts"),
        (b"WEBVTT\n\n00:01,000 --> 00:02,000\nx", "Line 3: not a cue timing. WebVTT"),
        (b"WEBVTT\n\n00:61.000 --> 00:62.000\nx", "Line 3: not a cue timing"),
        (
            b"WEBVTT\n\n00:03.000 --> 00:04.000\na\n\n00:01.000 --> 00:02.000\nb",
            "Line 6: the cue starts before the one above it",
        ),
        (b"1\n00:00:01 --> 00:00:02\nx", "Line 2: not a cue timing. SRT"),
        (b"WEBVTT\n\n00:01.000 --> 00:02.000\na --> b", "cannot contain -->"),
        (b"WEBVTT\n\n00:01.000 --> 00:02.000\nnul\x00", "binary"),
    ],
)
def test_bad_files_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(CaptionError, match=message):
        to_webvtt(data)


def test_size_and_cue_count_are_bounded() -> None:
    with pytest.raises(CaptionError, match="at most 1 MiB"):
        to_webvtt(b"WEBVTT\n\n" + b"x" * MAX_BYTES)
    many = "WEBVTT\n\n" + "".join(
        f"{captions.timestamp(i)} --> {captions.timestamp(i + 0.5)}\n.\n\n"
        for i in range(MAX_CUES + 1)
    )
    assert len(many.encode()) < MAX_BYTES
    with pytest.raises(CaptionError, match=f"at most {MAX_CUES} cues"):
        to_webvtt(many.encode())
    assert to_webvtt(many.rsplit("\n\n", 2)[0].encode()).count(" --> ") == MAX_CUES


@pytest.mark.parametrize(
    ("tag", "normal", "name"),
    [
        ("fr", "fr", "Français"),
        ("PT-br", "pt-BR", "Português (Brasil)"),
        ("zh-hant-tw", "zh-Hant-TW", "中文 (繁體) (TW)"),
        ("de-CH-1996", "de-CH-1996", "Deutsch (CH-1996)"),
        ("tlh", "tlh", "tlh"),
    ],
)
def test_language_tags_are_normalised_and_named(tag: str, normal: str, name: str) -> None:
    assert languages.normalise_tag(tag) == normal
    assert languages.display_name(normal) == name


@pytest.mark.parametrize(
    "tag", ["", "f", "french", "fr-", "fr_FR", "../x", "fr-" + "a" * 40, "x-priv"]
)
def test_other_language_tags_are_refused(tag: str) -> None:
    assert languages.normalise_tag(tag) is None


MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aud"\n'
    "360p/index.m3u8\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=2000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"\n'
    "720p/index.m3u8\n"
)


def test_the_master_playlist_gets_a_subtitles_group_and_loses_it_again() -> None:
    tracks = [
        SubtitleTrack("en", "English", "captions/en.m3u8"),
        SubtitleTrack("fr", 'Fr "quoted"', "captions/fr.m3u8"),
    ]
    merged = master_with_subtitles(MASTER, tracks)
    lines = merged.splitlines()
    media = [line for line in lines if "TYPE=SUBTITLES" in line]
    assert media == [
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",'
        'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="captions/en.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Fr \'quoted\'",LANGUAGE="fr",'
        'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="captions/fr.m3u8"',
    ]
    # Before the first variant, after the audio; every variant names the group.
    assert lines.index(media[0]) == 4
    variants = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 2 and all(v.endswith(',AUDIO="aud",SUBTITLES="subs"') for v in variants)
    # Merging again (or with no tracks) never doubles anything.
    assert master_with_subtitles(merged, tracks) == merged
    assert master_with_subtitles(merged, []) == MASTER
    assert master_with_subtitles(MASTER, []) == MASTER
    with pytest.raises(ValueError):
        master_with_subtitles("#EXTM3U\n#EXTINF:1,\nseg.m4s\n", tracks)


def test_a_subtitle_playlist_is_one_segment_covering_the_video() -> None:
    assert subtitle_playlist("fr.vtt", 125.25) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:126\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:125.250,\nfr.vtt\n#EXT-X-ENDLIST\n"
    )
