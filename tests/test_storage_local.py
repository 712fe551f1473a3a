"""The local storage backend's `path()`: the one place a key becomes a file name."""

from __future__ import annotations

from pathlib import Path

import pytest
from clipsync_storage_local import LocalStorage


def test_a_key_names_a_file_under_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    path = storage.path("videos/abc/hls/720p/seg_00001.m4s")
    assert path == (tmp_path / "media/videos/abc/hls/720p/seg_00001.m4s").resolve()


def test_a_key_through_a_link_that_leaves_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "media"
    (root / "videos").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret").write_text("not media")
    (root / "videos" / "abc").symlink_to(outside)
    storage = LocalStorage(root)
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.path("videos/abc/secret")
    # A link that stays inside the root is followed.
    (root / "videos" / "inside").symlink_to(root / "videos")
    assert storage.path("videos/inside/x") == (root / "videos" / "x").resolve()


def test_a_sibling_folder_sharing_the_roots_name_is_outside_it(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "media-other").mkdir()
    (root / "videos").symlink_to(tmp_path / "media-other")
    with pytest.raises(ValueError, match="escapes the storage root"):
        LocalStorage(root).path("videos/x")
