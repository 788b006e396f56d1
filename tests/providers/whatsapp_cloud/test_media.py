"""MediaStore on real files in tmp_path: layout, sha256 checks, size caps, atomic writes."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from contact_center.providers.whatsapp_cloud.media import (
    MAX_BYTES_BY_KIND,
    MediaRejected,
    MediaStore,
    StoredMedia,
    max_bytes_for,
    normalize_sha256,
)

PHOTO = b"\xff\xd8\xff\xe0" + b"fictitious jpeg bytes of a receipt photo" * 10
PHOTO_SHA256 = hashlib.sha256(PHOTO).hexdigest()
PHOTO_SHA256_BASE64 = base64.b64encode(hashlib.sha256(PHOTO).digest()).decode()
ONE_MB = 1024 * 1024


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_stores_a_file_under_its_sha256_in_two_levels_of_folders(tmp_path):
    store = MediaStore(tmp_path)

    stored = store.store(PHOTO, PHOTO_SHA256, "image/jpeg", max_bytes=5 * ONE_MB)

    expected_path = (
        tmp_path / "whatsapp-media" / PHOTO_SHA256[:2] / PHOTO_SHA256[2:4] / f"{PHOTO_SHA256}.jpg"
    )
    assert stored == StoredMedia(path=expected_path, sha256=PHOTO_SHA256, size=len(PHOTO))
    assert expected_path.read_bytes() == PHOTO
    assert files_under(tmp_path) == [expected_path]  # no temporary file left beside it


def test_accepts_the_sha256_as_base64(tmp_path):
    stored = MediaStore(tmp_path).store(PHOTO, PHOTO_SHA256_BASE64, "image/jpeg", max_bytes=5 * ONE_MB)

    assert stored.sha256 == PHOTO_SHA256
    assert stored.path.read_bytes() == PHOTO


@pytest.mark.parametrize(
    "announced",
    [
        PHOTO_SHA256.upper(),
        PHOTO_SHA256_BASE64.rstrip("="),  # padding dropped
        PHOTO_SHA256_BASE64.replace("+", "-").replace("/", "_"),  # URL-safe alphabet
        f" {PHOTO_SHA256}\n",
    ],
)
def test_normalizes_other_spellings_of_the_same_digest(announced):
    assert normalize_sha256(announced) == PHOTO_SHA256


def test_stores_without_an_announced_sha256(tmp_path):
    stored = MediaStore(tmp_path).store(PHOTO, None, "image/jpeg", max_bytes=5 * ONE_MB)

    assert stored.sha256 == PHOTO_SHA256


def test_a_sha256_mismatch_is_refused_and_nothing_is_left_behind(tmp_path):
    other_sha256 = hashlib.sha256(b"a different file").hexdigest()

    with pytest.raises(MediaRejected) as refused:
        MediaStore(tmp_path).store(PHOTO, other_sha256, "image/jpeg", max_bytes=5 * ONE_MB)

    assert PHOTO_SHA256 in refused.value.reason and other_sha256 in refused.value.reason
    assert "not the announced" in refused.value.reason
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("announced", ["not-a-digest", "abc123", base64.b64encode(b"short").decode(), ""])
def test_an_announced_sha256_that_is_no_digest_at_all_is_refused(tmp_path, announced):
    with pytest.raises(MediaRejected, match="neither 64 hex characters nor a base64 sha256"):
        MediaStore(tmp_path).store(PHOTO, announced, "image/jpeg", max_bytes=5 * ONE_MB)

    assert files_under(tmp_path) == []


def test_a_file_over_the_cap_is_refused_before_anything_is_written(tmp_path):
    content = b"x" * 1001

    with pytest.raises(MediaRejected) as refused:
        MediaStore(tmp_path).store(content, None, "image/jpeg", max_bytes=1000)

    assert refused.value.reason == "the file has 1001 bytes, over the 1000-byte limit for image/jpeg"
    assert files_under(tmp_path) == []


def test_a_file_exactly_at_the_cap_is_kept(tmp_path):
    content = b"x" * 1000

    stored = MediaStore(tmp_path).store(content, None, "image/jpeg", max_bytes=1000)

    assert stored.size == 1000


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(MediaRejected, match="empty"):
        MediaStore(tmp_path).store(b"", None, "image/jpeg", max_bytes=1000)


def test_storing_the_same_content_twice_keeps_one_file(tmp_path):
    store = MediaStore(tmp_path)

    first = store.store(PHOTO, PHOTO_SHA256, "image/jpeg", max_bytes=5 * ONE_MB)
    second = store.store(PHOTO, PHOTO_SHA256_BASE64, "image/jpeg", max_bytes=5 * ONE_MB)

    assert first == second
    assert files_under(tmp_path) == [first.path]


def test_a_truncated_file_at_the_final_path_is_replaced_whole(tmp_path):
    # A file of the wrong size at the final path (written by something other than this store) is
    # not trusted as the stored copy.
    store = MediaStore(tmp_path)
    path = store.path_for(PHOTO_SHA256, "image/jpeg")
    path.parent.mkdir(parents=True)
    path.write_bytes(PHOTO[:10])

    store.store(PHOTO, PHOTO_SHA256, "image/jpeg", max_bytes=5 * ONE_MB)

    assert path.read_bytes() == PHOTO


def test_open_reads_back_the_stored_file(tmp_path):
    store = MediaStore(tmp_path)
    store.store(PHOTO, PHOTO_SHA256, "image/jpeg", max_bytes=5 * ONE_MB)

    with store.open(PHOTO_SHA256, "image/jpeg") as file:
        assert file.read() == PHOTO


def test_open_of_a_file_never_stored_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        MediaStore(tmp_path).open(PHOTO_SHA256, "image/jpeg")


@pytest.mark.parametrize(
    "mime_type, extension",
    [
        ("image/jpeg", "jpg"),
        ("audio/ogg; codecs=opus", "ogg"),  # a voice note
        ("Application/PDF", "pdf"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("application/x-fictitious", "bin"),
        ("text/html", "bin"),  # never stored as something a browser would render
        ("", "bin"),
        ("../../x", "bin"),
    ],
)
def test_extension_comes_from_the_mime_type_with_a_safe_fallback(tmp_path, mime_type, extension):
    path = MediaStore(tmp_path).path_for(PHOTO_SHA256, mime_type)

    assert path.name == f"{PHOTO_SHA256}.{extension}"
    assert path.parent == tmp_path / "whatsapp-media" / PHOTO_SHA256[:2] / PHOTO_SHA256[2:4]


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc",
        "../../etc/passwd" + "0" * 49,
        PHOTO_SHA256.upper(),
        PHOTO_SHA256[:63],
        PHOTO_SHA256 + "0",
        PHOTO_SHA256 + "\n",
        "/" + PHOTO_SHA256[1:],
        "g" * 64,
        "",
    ],
)
def test_anything_but_64_lowercase_hex_is_refused_as_a_path(tmp_path, hostile):
    store = MediaStore(tmp_path)

    with pytest.raises(MediaRejected, match="is not a sha256"):
        store.path_for(hostile, "image/jpeg")
    with pytest.raises(MediaRejected, match="is not a sha256"):
        store.open(hostile, "image/jpeg")


@pytest.mark.parametrize(
    "mime_type, kind, limit",
    [
        ("image/jpeg", "image", 5 * ONE_MB),
        ("audio/ogg; codecs=opus", "audio", 16 * ONE_MB),
        ("video/mp4", "video", 16 * ONE_MB),
        ("application/pdf", "document", 100 * ONE_MB),
        ("image/webp", "sticker", 500 * 1024),
        ("image/jpeg", "document", 100 * ONE_MB),  # a photo sent as a document keeps its quality
        ("video/mp4", None, 16 * ONE_MB),
        ("image/png", None, 5 * ONE_MB),
        ("application/zip", None, 100 * ONE_MB),
        ("application/zip", "fictitious-kind", 100 * ONE_MB),
    ],
)
def test_max_bytes_by_kind_then_by_mime_type(mime_type, kind, limit):
    assert max_bytes_for(mime_type, kind) == limit


def test_the_size_table_covers_every_whatsapp_media_type():
    assert set(MAX_BYTES_BY_KIND) == {"image", "audio", "video", "document", "sticker"}


def test_a_write_that_fails_leaves_no_partial_file_behind(tmp_path):
    # Something that is not a file occupies the final path, so the rename fails after the
    # temporary file was written: the error surfaces and the temporary file is gone.
    store = MediaStore(tmp_path)
    blocker = store.path_for(PHOTO_SHA256, "image/jpeg")
    blocker.mkdir(parents=True)
    (blocker / "occupied").write_bytes(b"")

    with pytest.raises(OSError):
        store.store(PHOTO, PHOTO_SHA256, "image/jpeg", max_bytes=5 * ONE_MB)

    assert [path.name for path in blocker.parent.iterdir()] == [blocker.name]
