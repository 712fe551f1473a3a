"""Finding 7: text with invisible characters is refused, everything else NFKC-normalised.

`a@x.org\\u0000` registered and looked exactly like `a@x.org`. The rule lives in
`clipsync/text_rules.py`; these tests hold emails (registration), video titles and
descriptions (registering an upload) and category labels (the config) to it.
"""

from __future__ import annotations

import httpx
import pytest
from clients import PASSWORD, bearer, register, upload
from clips import make_clip

from clipsync.errors import ConfigError
from clipsync.models import User, Video
from clipsync.settings import parse_settings
from clipsync.text_rules import InvisibleCharacter, clean_text


def fullwidth(text: str) -> str:
    """`text` in fullwidth forms (U+FF01...), which NFKC turns back into ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# One of each kind the rule refuses: control (Cc), format (Cf: zero-width space,
# right-to-left override, byte order mark), line and paragraph separators; and (in
# the test below) an unpaired surrogate, which JSON can carry.
INVISIBLE = ["\u0000", "\u0007", "\u001b", "\u200b", "\u202e", "\ufeff", "\u2028", "\u2029"]


@pytest.mark.parametrize("character", [*INVISIBLE, "\ud800"])
def test_invisible_characters_are_refused_and_named(character: str) -> None:
    with pytest.raises(InvisibleCharacter) as refused:
        clean_text(f"Launch{character}day")
    assert refused.value.character == character
    assert f"U+{ord(character):04X}" in str(refused.value)


def test_text_is_nfkc_normalised_and_multiline_text_keeps_its_line_breaks() -> None:
    assert clean_text(fullwidth("Launch") + " \ufb01nal") == "Launch final"
    assert clean_text("one\r\ntwo\rthree\n\tfour", multiline=True) == "one\ntwo\nthree\n\tfour"
    with pytest.raises(InvisibleCharacter):
        clean_text("one\ntwo")
    with pytest.raises(InvisibleCharacter):
        clean_text("one\ntwo\u0007", multiline=True)


def test_prose_keeps_the_joiners_that_scripts_and_emoji_need_but_emails_do_not() -> None:
    # "mikhaham" (I want) in Persian: the non-joiner belongs to the spelling.
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    coder = "\U0001f469\u200d\U0001f4bb"  # one emoji made of two and a joiner
    assert clean_text(persian) == persian
    assert clean_text(f"Launch {coder}") == f"Launch {coder}"
    for joiner in ("\u200c", "\u200d"):
        with pytest.raises(InvisibleCharacter):
            clean_text(f"a{joiner}@x.org", identifier=True)


@pytest.mark.parametrize("character", INVISIBLE)
async def test_an_email_with_an_invisible_character_is_refused_with_a_clear_422(
    client: httpx.AsyncClient, character: str
) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": f"a{character}@x.org", "password": PASSWORD}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "email"
    assert "invisible or control characters" in error["message"]
    assert f"U+{ord(character):04X}" in error["message"]
    assert not await User.exists()


async def test_the_nul_email_of_the_report_is_refused_and_the_plain_one_stays_free(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post(
        "/api/auth/register", json={"email": "a@x.org\u0000", "password": PASSWORD}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith(
        "Email addresses cannot contain invisible or control characters (found U+0000)"
    )
    await register(client, "a@x.org")


async def test_emails_are_nfkc_normalised_so_look_alikes_are_one_account(
    client: httpx.AsyncClient,
) -> None:
    body = await register(client, fullwidth("A") + "nn@" + fullwidth("E") + "xample.org")
    assert body["user"]["email"] == "ann@example.org"
    again = await client.post(
        "/api/auth/register", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert again.status_code == 409
    signed_in = await client.post(
        "/api/auth/login", json={"email": fullwidth("ANN") + "@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 200


async def test_titles_and_descriptions_are_checked_and_the_upload_is_kept(
    client: httpx.AsyncClient,
) -> None:
    token = (await register(client, "uploader@example.org"))["token"]
    uploaded = await upload(client, token, make_clip("landscape"))
    video_id = uploaded.json()["videoId"]

    async def register_as(title: str, description: str) -> httpx.Response:
        return await client.post(
            "/api/videos/register",
            json={"videoId": video_id, "title": title, "description": description},
            headers=bearer(token),
        )

    for title in ("Launch\u202eexe.mp4", "Launch\tday", "Launch\nday", "Launch\u200bday"):
        refused = await register_as(title, "")
        assert refused.status_code == 422, (title, refused.text)
        assert refused.json()["error"]["field"] == "title"
        assert "Titles cannot contain invisible or control characters" in refused.text
    refused = await register_as("Launch", "About\u0000it")
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "description"

    accepted = await register_as(fullwidth("Launch"), "Line one\r\nLine two\twith a tab")
    assert accepted.status_code == 201, accepted.text
    video = await Video.get(id=video_id)
    assert video.title == "Launch"
    assert video.description == "Line one\nLine two\twith a tab"


def test_a_category_label_with_an_invisible_character_stops_start_up_naming_the_key() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(
            {"category": [{"name": "staff", "label": "Sta\u202eff", "default": True}]},
            where="config.toml",
        )
    message = str(refused.value)
    assert message.startswith("config.toml: [[category]] 'staff' label")
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in message


def test_category_labels_are_nfkc_normalised() -> None:
    settings = parse_settings(
        {"category": [{"name": "staff", "label": fullwidth("Staff"), "default": True}]},
        where="test",
    )
    assert settings.categories[0].label == "Staff"
