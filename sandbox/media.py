"""File bytes for job photos and documents: content sniffing, compression on ingest, thumbnails and the
placeholder bytes that seeded files (which have no stored blob) are served with.

Everything here is pure: bytes in, bytes out, no store and no clock, so the resource modules can run the
slow parts (Pillow) in a worker thread. Types are recognised by content (magic bytes), never by the file
name or the declared Content-Type.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import struct
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageOps

MAX_SIDE = 2560  # photos are downscaled so the longest side is at most this
JPEG_QUALITY = 82
MAX_PIXELS = 60_000_000  # larger images are refused rather than decoded (decompression bombs)
ASSUMED_VIDEO = (1920, 1080)  # when an MP4 has no readable track header
NAME_LIMIT = 200  # characters kept of an uploaded file's name


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # jpeg, png, mp4, pdf, docx
    mime: str
    ext: str  # the canonical extension, with the dot
    exts: tuple[str, ...]  # extensions a file name may already carry for this kind


KINDS = {
    "jpeg": Kind("jpeg", "image/jpeg", ".jpg", (".jpg", ".jpeg", ".jpe")),
    "png": Kind("png", "image/png", ".png", (".png",)),
    "mp4": Kind("mp4", "video/mp4", ".mp4", (".mp4", ".m4v")),
    "pdf": Kind("pdf", "application/pdf", ".pdf", (".pdf",)),
    "docx": Kind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx",
                 (".docx",)),
}
BY_MIME = {k.mime: k for k in KINDS.values()}
IMAGES = frozenset({"jpeg", "png"})

# ISO base media brands that make an ``ftyp`` file an MP4 (HEIF/AVIF images and QuickTime share the box).
_MP4_BRANDS = frozenset({b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
                         b"M4V ", b"mmp4", b"dash", b"MSNV", b"f4v "})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"})


class MediaError(ValueError):
    """The bytes are not what they claim to be (corrupt, truncated, too large to decode)."""


# -- sniffing -----------------------------------------------------------------------------------------

def sniff(data: bytes) -> Kind | None:
    """The kind of file these bytes are, from their content alone; None when not one we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return KINDS["jpeg"]
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return KINDS["png"]
    if len(data) >= 12 and data[4:8] == b"ftyp" and _is_mp4(data):
        return KINDS["mp4"]
    if b"%PDF-" in data[:1024]:  # readers accept the header anywhere in the first KB
        return KINDS["pdf"]
    if data.startswith(b"PK\x03\x04") and _is_docx(data):
        return KINDS["docx"]
    return None


def _is_mp4(data: bytes) -> bool:
    size = struct.unpack(">I", data[:4])[0]
    box = data[8 : min(max(size, 16), 256)]
    major, brands = box[:4], {box[i : i + 4] for i in range(8, len(box) - 3, 4)}
    if major in _HEIF_BRANDS:
        return False
    return major in _MP4_BRANDS or bool(brands & _MP4_BRANDS)


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:  # reads the directory only, inflates nothing
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return False
    return "word/document.xml" in names


def clean_name(name: str | None, default: str = "upload") -> str:
    """A client's file name made safe to store and to send back in a header: its last path segment (either
    slash), without control characters (NUL, CR, LF…) or quotes, without leading or trailing dots (no
    ``..``, no hidden files), at most `NAME_LIMIT` characters (the end, so the extension, is kept)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f\"]", "", base)
    return _limit(base) or default


def _limit(name: str) -> str:
    return name.strip().strip(".").strip()[-NAME_LIMIT:].lstrip(".").strip()


def safe_name(name: str | None, kind: Kind) -> str:
    """The basename of an uploaded file name (`clean_name`), ending in the extension of what the file
    really is (a PNG sent as ``scan.pdf`` is stored as ``scan.png``)."""
    base = clean_name(name)
    stem, dot, ext = base.rpartition(".")
    if dot and f".{ext.lower()}" in kind.exts:
        base = f"{stem}.{ext.lower()}"
    elif dot and 0 < len(ext) <= 5 and ext.isalnum():
        base = stem + kind.ext
    else:
        base += kind.ext
    return _limit(base)


# -- images -------------------------------------------------------------------------------------------

def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise MediaError(f"the image is {image.width}x{image.height}, over {MAX_PIXELS // 1_000_000} megapixels")
        return image
    except MediaError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"the image cannot be read ({exc})") from None


def _decoded(data: bytes, box: int | None = None) -> Image.Image:
    """Open and fully decode, applying the EXIF orientation; `box` lets JPEG decode at a reduced scale."""
    image = _open(data)
    try:
        if box is not None and image.format == "JPEG":
            image.draft("RGB", (box, box))
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise MediaError(f"the image is corrupt or truncated ({exc})") from None


def inspect_image(data: bytes) -> tuple[int, int]:
    """(width, height) of a complete, decodable image; MediaError otherwise."""
    image = _decoded(data)
    return image.width, image.height


def compress(data: bytes, kind: Kind) -> tuple[bytes, int, int]:
    """Photo ingest: decode, turn upright, downscale to MAX_SIDE, and re-encode without EXIF or text
    chunks (JPEG at quality 82, PNG optimised). Returns (bytes, width, height)."""
    image = _decoded(data, MAX_SIDE)
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if kind.name == "jpeg":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        extra: dict[str, Any] = {}
        if image.info.get("icc_profile"):
            extra["icc_profile"] = image.info["icc_profile"]  # colour, not metadata: kept
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, **extra)
    else:
        image.save(out, "PNG", optimize=image.width * image.height <= 4_000_000)
    return out.getvalue(), image.width, image.height


_THUMBS: OrderedDict[tuple[str, int], bytes | None] = OrderedDict()


def cached_thumbnail(key: str, size: int, load: Callable[[], bytes | None]) -> bytes | None:
    """`thumbnail()` of the bytes `load()` gives, remembered for the last 128 (key, size) pairs; `key`
    must change when the bytes do (a blob's content hash, or a seeded row's uuid)."""
    if (key, size) in _THUMBS:
        _THUMBS.move_to_end((key, size))
        return _THUMBS[(key, size)]
    data = load()
    if data is None:
        return None
    made = thumbnail(data, size)
    _THUMBS[(key, size)] = made
    while len(_THUMBS) > 128:
        _THUMBS.popitem(last=False)
    return made


def thumbnail(data: bytes, size: int) -> bytes | None:
    """A JPEG whose longest side is exactly `size` (smaller images are scaled up), or None when the
    bytes are not a decodable image."""
    try:
        image = _decoded(data, size)
    except MediaError:
        return None
    scale = size / max(image.size)
    dims = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image = image.resize(dims, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def placeholder_svg(label: str, size: int) -> bytes:
    """The image served when no thumbnail can be made: a tile showing the file type."""
    text = escape(label.upper()[:8] or "FILE")
    font = max(10, size // (3 if len(text) <= 4 else 5))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">'
        f'<rect width="{size}" height="{size}" fill="#eef1f5"/>'
        f'<rect x="{size * 0.2:.0f}" y="{size * 0.12:.0f}" width="{size * 0.6:.0f}" height="{size * 0.76:.0f}" '
        f'rx="{max(2, size // 40)}" fill="#ffffff" stroke="#9aa5b1" stroke-width="{max(1, size // 100)}"/>'
        f'<text x="50%" y="56%" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="{font}" font-weight="bold" fill="#52606d">{text}</text></svg>'
    ).encode()


# -- video --------------------------------------------------------------------------------------------

def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def mp4_info(data: bytes) -> tuple[int, int, float | None] | None:
    """(width, height, duration in seconds) from the ``moov`` box: the first track with a picture
    (``tkhd`` width/height, 16.16 fixed point) and the movie header's duration. None when unreadable."""
    for kind, start, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        duration = None
        for sub, s, e in _boxes(data, start, end):
            if sub == b"mvhd" and e - s >= 20:
                if data[s] == 1 and e - s >= 32:
                    scale, length = struct.unpack(">IQ", data[s + 20 : s + 32])
                else:
                    scale, length = struct.unpack(">II", data[s + 12 : s + 20])
                duration = round(length / scale, 3) if scale else None
            elif sub == b"trak":
                for leaf, ls, le in _boxes(data, s, e):
                    if leaf == b"tkhd" and le - ls >= 84:
                        width, height = struct.unpack(">II", data[le - 8 : le])
                        if width >> 16 and height >> 16:
                            return width >> 16, height >> 16, duration
        return None
    return None


# -- placeholders for seeded files ----------------------------------------------------------------------

def _colour(key: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(key.encode()).digest()
    return 90 + digest[0] % 120, 90 + digest[1] % 120, 90 + digest[2] % 120


@functools.lru_cache(maxsize=16)
def placeholder_image(key: str, kind: str, width: int, height: int, label: str) -> bytes:
    """A deterministic picture (colour from `key`) of the recorded size, labelled with the file name."""
    image = Image.new("RGB", (width, height), _colour(key))
    draw = ImageDraw.Draw(image)
    step = max(8, min(width, height) // 8)
    for x in range(0, width + height, step * 2):  # diagonal stripes, so thumbnails are visibly images
        draw.line([(x, 0), (x - height, height)], fill=(235, 235, 235), width=max(1, step // 3))
    draw.rectangle([0, height // 2 - step // 2, width, height // 2 + step // 2], fill=(255, 255, 255))
    draw.text((step // 2, height // 2 - 5), label[:60], fill=(40, 40, 40))
    out = io.BytesIO()
    if kind == "png":
        image.save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=80)
    return out.getvalue()


def placeholder_pdf(title: str) -> bytes:
    """A minimal valid one-page PDF showing `title` (with a correct cross-reference table)."""
    text = re.sub(r"[^\x20-\x7e]", "?", title)[:80].replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def placeholder_docx(title: str) -> bytes:
    """A minimal valid Word document with one paragraph (fixed timestamps: same bytes every time)."""
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>'),
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
            f'<w:p><w:r><w:t>{escape(title)}</w:t></w:r></w:p></w:body></w:document>'),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def content(row: dict, blobs: Any) -> bytes | None:
    """The bytes of a photo or document row: its stored blob, or for a seeded row (no blob) placeholder
    bytes of its recorded type made on demand. None when an uploaded file's blob is missing."""
    if row.get("blob"):
        return blobs.get(row["blob"])
    kind = BY_MIME.get(row.get("mime_type"))
    name = row.get("file_name") or "file"
    if kind is None or kind.name in IMAGES:
        return placeholder_image(row["uuid"], "png" if kind and kind.name == "png" else "jpeg",
                                 row.get("width") or 1600, row.get("height") or 1200, name)
    if kind.name == "docx":
        return placeholder_docx(name)
    if kind.name == "mp4":
        return None  # no video is seeded; an uploaded one always has its blob
    return placeholder_pdf(name)
