"""Tags: normalised on the way in, limited with clear refusals, shown in the video's JSON
(one query for a whole list), set on upload and by the owner's edit, and suggested only
from videos the person may see, most used first."""

from __future__ import annotations

from typing import Any

import organise_world
import pytest

from clipsync.errors import ValidationFailed
from clipsync.models import Tag, VideoTag
from clipsync.services import tags

world = organise_world.world  # the fixture


def test_labels_are_trimmed_deduplicated_case_insensitively_and_split_on_commas() -> None:
    assert tags.parse(["  Demo ", "demo", "DEMO", "How  to", "", "#harbour"]) == [
        "Demo",
        "How to",
        "harbour",
    ]
    assert tags.parse("Demo, how to,, demo ") == ["Demo", "how to"]
    assert tags.parse(None) == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (["x" * (tags.MAX_LENGTH + 1)], f"at most {tags.MAX_LENGTH} characters"),
        ([f"t{n}" for n in range(tags.MAX_TAGS + 1)], f"at most {tags.MAX_TAGS} tags"),
        ([3], "list of words"),
        ({"a": 1}, "list of words"),
        (["bad\u200bword"], "invisible"),
    ],
)
def test_too_long_too_many_or_not_text_is_refused_with_the_reason(value: Any, says: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        tags.parse(value)
    assert says in refused.value.message
    assert refused.value.details["field"] == "tags"


async def test_the_owner_sets_tags_with_patch_and_the_label_stays_as_first_written(
    world: dict,
) -> None:
    client, video = world["client"], world["videos"]["zebra"]
    changed = await client.patch(
        f"/api/videos/{video.id}",
        json={"tags": ["DEMO", "Crossings", "crossings"]},
        headers=world["headers"]["ann"],
    )
    assert changed.status_code == 200, changed.text
    # "Demo" existed already: the video shows it as first written.
    assert changed.json()["video"]["tags"] == ["Demo", "Crossings"]
    assert await Tag.filter(name="demo").count() == 1
    detail = await client.get(f"/api/videos/{video.id}", headers=world["headers"]["sam"])
    assert detail.json()["video"]["tags"] == ["Demo", "Crossings"]

    cleared = await client.patch(
        f"/api/videos/{video.id}", json={"tags": []}, headers=world["headers"]["ann"]
    )
    assert cleared.json()["video"]["tags"] == []
    assert await VideoTag.filter(video_id=video.id).count() == 0


async def test_bad_tags_change_nothing_and_others_get_404(world: dict) -> None:
    client, video = world["client"], world["videos"]["demo"]
    too_many = [f"t{n}" for n in range(tags.MAX_TAGS + 1)]
    refused = await client.patch(
        f"/api/videos/{video.id}",
        json={"title": "Renamed", "tags": too_many},
        headers=world["headers"]["ann"],
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "tags"
    again = await client.get(f"/api/videos/{video.id}", headers=world["headers"]["ann"])
    assert again.json()["video"]["title"] == "Demo of the harbour"
    assert again.json()["video"]["tags"] == ["Demo", "Harbour"]
    # Sam may see the video but not change it.
    other = await client.patch(
        f"/api/videos/{video.id}", json={"tags": ["mine"]}, headers=world["headers"]["sam"]
    )
    assert other.status_code == 404


async def test_the_list_carries_tags_with_one_query_for_the_page(
    world: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world["client"]
    reads: list[dict] = []
    original = VideoTag.filter

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(VideoTag, "filter", counting)
    listed = await client.get("/api/videos?pageSize=10", headers=world["headers"]["boss"])
    assert listed.status_code == 200
    by_title = {item["title"]: item["tags"] for item in listed.json()["items"]}
    assert len(by_title) == 5
    assert by_title["Demo of the harbour"] == ["Demo", "Harbour"]
    assert by_title["zebra crossing"] == []
    assert by_title["Dealer demo"] == ["Demo"]
    assert len(reads) == 1, reads


async def test_suggestions_come_only_from_videos_the_person_may_see_most_used_first(
    world: dict,
) -> None:
    client, headers = world["client"], world["headers"]

    async def suggested(who: str, prefix: str) -> list[tuple[str, int]]:
        answer = await client.get("/api/tags", params={"q": prefix}, headers=headers[who])
        assert answer.status_code == 200, answer.text
        return [(item["label"], item["uses"]) for item in answer.json()["items"]]

    # Sam (staff) sees Ann's approved videos: Demo once, Harbour once (the draft is
    # READY, not for Sam); the dealers' "demo" video is not Sam's to see.
    assert await suggested("sam", "h") == [("Harbour", 1)]
    assert await suggested("sam", "DE") == [("Demo", 1)]
    # Ann sees her own draft too.
    assert await suggested("ann", "h") == [("Harbour", 2)]
    # The admin sees both demos: Demo is the most used.
    assert await suggested("boss", "") == []
    assert (await suggested("boss", "d"))[0] == ("Demo", 2)
    # Dee (dealers) never hears of Finance, which is only on a staff video.
    assert await suggested("dee", "fin") == []
    # Wildcards are plain characters.
    assert await suggested("boss", "%") == []
    assert await suggested("boss", "_") == []


async def test_registering_an_upload_with_tags(world: dict) -> None:
    # The register path checks tags before anything else: a refusal says so.
    client = world["client"]
    refused = await client.post(
        "/api/videos/register",
        json={"videoId": "00000000-0000-0000-0000-000000000000", "title": "T", "tags": [1]},
        headers=world["headers"]["ann"],
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "tags"


async def test_control_characters_in_a_typed_tag_find_nothing(world: dict) -> None:
    client, sam = world["client"], world["headers"]["sam"]
    for text in ("de\x00mo", "\x07", "de\u200bmo"):
        suggested = await client.get("/api/tags", params={"q": text}, headers=sam)
        assert suggested.status_code == 200 and suggested.json()["items"] == []
        browsed = await client.get("/api/videos", params={"tag": text, "after": ""}, headers=sam)
        assert browsed.status_code == 200 and browsed.json()["items"] == []
