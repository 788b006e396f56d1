"""Where media received over WhatsApp live on disk.

Files are content-addressed by their sha256 (`root/whatsapp-media/ab/cd/<sha256>.<ext>`): the same
image forwarded by a hundred customers is stored once, and a path can be derived again from what
the message row keeps (sha256 and mime type) without a lookup table. The sha256 is checked against
the one WhatsApp announced before anything reaches the final path, and writes are atomic, so a
file at its final path is always whole and always the announced content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MEDIA_FOLDER = "whatsapp-media"

_KB = 1024
_MB = 1024 * 1024
# WhatsApp's published size limits per message type. Meta writes "MB" without saying which; the
# binary megabyte is the larger, so we never refuse a file WhatsApp itself accepted.
MAX_BYTES_BY_KIND = {
    "image": 5 * _MB,
    "audio": 16 * _MB,
    "video": 16 * _MB,
    "document": 100 * _MB,
    "sticker": 500 * _KB,  # animated stickers; static ones are limited to 100 KB, so this covers both
}

# A fixed table rather than the `mimetypes` module, whose answers depend on the machine's files.
# Mostly the types WhatsApp lists as supported per message type.
EXTENSIONS_BY_MIME_TYPE = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/ogg": "ogg",  # voice notes: "audio/ogg; codecs=opus"
    "audio/opus": "opus",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/zip": "zip",
}
# Unknown types are still stored, under an extension no browser or OS will run or render.
FALLBACK_EXTENSION = "bin"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class MediaRejected(ValueError):
    """A received file we will not keep; `reason` says why, for the message's timeline and logs."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StoredMedia:
    path: Path
    sha256: str  # lowercase hex
    size: int  # bytes


def base_mime_type(mime_type: str) -> str:
    """'Audio/OGG; codecs=opus' → 'audio/ogg'."""
    return mime_type.split(";", 1)[0].strip().lower()


def extension_for(mime_type: str) -> str:
    return EXTENSIONS_BY_MIME_TYPE.get(base_mime_type(mime_type), FALLBACK_EXTENSION)


def max_bytes_for(mime_type: str, kind: str | None = None) -> int:
    """The size cap for a file, by WhatsApp message type (`kind`: image, audio, video, document,
    sticker). The kind wins over the mime type: a PDF or a photo sent as a document has the
    document's limit. Without a known kind, the mime type's family decides, and anything else is
    held to the document limit, the only type that carries arbitrary files."""
    if kind in MAX_BYTES_BY_KIND:
        return MAX_BYTES_BY_KIND[kind]
    family = base_mime_type(mime_type).split("/", 1)[0]
    return MAX_BYTES_BY_KIND.get(family, MAX_BYTES_BY_KIND["document"])


def normalize_sha256(announced: str) -> str:
    """The sha256 as lowercase hex. WhatsApp usually sends lowercase hex and sometimes base64 of
    the 32-byte digest; both are accepted, anything else is refused."""
    text = announced.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return text.lower()
    try:
        # A 64-character hex string is never a 32-byte base64 value (that is 44 characters), so
        # trying hex first cannot misread one as the other.
        # The URL-safe alphabet and missing padding are accepted too: the digest is what matters.
        standard = text.replace("-", "+").replace("_", "/")
        digest = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise MediaRejected(
            f"the announced sha256 {announced[:80]!r} is neither 64 hex characters nor a base64 sha256 digest"
        )
    return digest.hex()


class MediaStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str, mime_type: str) -> Path:
        """Where the file with this content lives. The sha256 must be exactly 64 lowercase hex
        characters: it becomes part of a path, and anything else ('../../etc') could leave the
        media folder."""
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise MediaRejected(f"{str(sha256)[:80]!r} is not a sha256 (64 lowercase hex characters)")
        # Two levels of 256 folders keep any one folder small even with millions of files.
        return self.root / MEDIA_FOLDER / sha256[:2] / sha256[2:4] / f"{sha256}.{extension_for(mime_type)}"

    def store(
        self, content: bytes, expected_sha256: str | None, mime_type: str, max_bytes: int
    ) -> StoredMedia:
        """Keep a received file. Refuses (MediaRejected) an empty file, one over `max_bytes`, or
        one whose sha256 is not the announced one; in every refusal nothing is left on disk."""
        size = len(content)
        if size == 0:
            raise MediaRejected("the file is empty")
        if size > max_bytes:
            raise MediaRejected(
                f"the file has {size} bytes, over the {max_bytes}-byte limit for "
                f"{base_mime_type(mime_type) or 'this type'}"
            )
        actual = hashlib.sha256(content).hexdigest()
        if expected_sha256 is not None:
            expected = normalize_sha256(expected_sha256)
            if actual != expected:
                raise MediaRejected(
                    f"the file's sha256 is {actual}, not the announced {expected}: "
                    "the download is corrupt or not the announced file"
                )
        path = self.path_for(actual, mime_type)
        # Same name means same content: a second copy (a forwarded image, a webhook retry) is
        # already there, whole, because only complete files ever reach the final path.
        if not (path.is_file() and path.stat().st_size == size):
            self._write_atomically(path, content)
        return StoredMedia(path=path, sha256=actual, size=size)

    def open(self, sha256: str, mime_type: str) -> BinaryIO:
        """The stored file for reading (serving it to an operator). FileNotFoundError if absent."""
        return self.path_for(sha256, mime_type).open("rb")

    @staticmethod
    def _write_atomically(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary file sits in the final folder so os.replace is a rename on one file
        # system (atomic); its dot-name can never be mistaken for a stored file.
        descriptor, temporary = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())  # the bytes are on disk before the name points at them
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
