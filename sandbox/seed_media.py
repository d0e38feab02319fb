"""Seeded rows for job photos and documents: metadata only, so every seeded job's ``photos_count`` and
``documents_count`` equal its live rows (job 1001: three photos, one document).

Seeded rows have no blob: `sandbox.media.content()` makes deterministic placeholder bytes of the recorded
type on demand, so downloads and thumbnails work on them too. Everything comes from one seeded stream
(``random.Random(f"{seed}:media")``) and the job's own timestamps — never the wall clock — and rows are
lean so that 100,000 jobs add about a second to a build: keys that would be None or False on every
seeded row (``blob``, ``archived``, ``archived_at``, a document's ``width``/``height``) are left out, and
readers use ``row.get()``.
"""

from __future__ import annotations

import random
from datetime import datetime

from .storage import row_maker

PHOTO_TYPES = ("before", "before", "during", "after", "after", "other")
# (width, height) of seeded pictures, as a phone would take them once downscaled on ingest.
PHOTO_SIZES = ((1600, 1200), (1200, 1600), (1920, 1080), (1600, 1200))
# file_type_id -> the kinds of file seeded for it: (mime, extension)
_PDF, _DOCX = ("application/pdf", "pdf"), (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
_JPEG = ("image/jpeg", "jpg")
DOC_KINDS = {1: (_PDF,), 2: (_PDF, _PDF, _DOCX), 3: (_PDF,), 4: (_PDF, _DOCX), 5: (_JPEG,), 6: (_PDF, _JPEG)}
DOC_TYPES = (1, 2, 3, 3, 4, 5, 6)
_K = 0x9E3779B97F4B  # odd: i -> i * _K mod 2**48 is a bijection, so every row's uuid differs
_MASK = (1 << 48) - 1


def _prefix(rng: random.Random) -> tuple[str, int]:
    """Row uuids for one table are a random v4 prefix from the stream plus a scrambled row number
    (``(ID * _K + offset) mod 2**48``): unique, valid, and several times cheaper than a fresh uuid."""
    h = f"{rng.getrandbits(80):020x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-", rng.getrandbits(48)


def build(tables: dict[str, list[dict]], seed: int, clock_start: datetime) -> dict[str, list[dict]]:
    rng = random.Random(f"{seed}:media")
    (photo_prefix, photo_offset), (doc_prefix, doc_offset) = _prefix(rng), _prefix(rng)
    bits = rng.getrandbits
    names = {t["ID"]: t["name"].replace(" ", "_") for t in tables.get("file_types", ())}
    shared: dict[str, str] = {}  # one object per repeated file name (100,000 jobs: 15,000 of 270,000)
    photo, document = row_maker("photos"), row_maker("documents")  # compact rows: 100,000 jobs make ~370,000
    photos: list[dict] = []
    documents: list[dict] = []
    for job in tables.get("jobs", ()):
        n_photos, n_docs = job.get("photos_count") or 0, job.get("documents_count") or 0
        if not (n_photos or n_docs):
            continue
        job_id, org_id, by = job["ID"], job["org_id"], job["created_by"]
        # "before" pictures are taken when the job is raised, the rest at its last update.
        opened, later = job["created_at"], job["updated_at"]
        for _ in range(n_photos):
            r = bits(44)  # one draw split into the row's choices
            kind, (width, height), png = PHOTO_TYPES[r % 6], PHOTO_SIZES[(r >> 3) & 3], (r >> 5) & 15 == 0
            size = 600_000 + (r >> 9 & 0x3FFFFF)  # 0.6 to 4.8 MB as taken
            id_ = len(photos) + 1
            photos.append(photo({
                "ID": id_, "uuid": f"{photo_prefix}{(id_ * _K + photo_offset) & _MASK:012x}", "org_id": org_id,
                "job_id": job_id, "photo_type": kind,
                "file_name": shared.setdefault(name := f"IMG_{1000 + (r >> 31)}.{'png' if png else 'jpg'}", name),
                "mime_type": "image/png" if png else "image/jpeg", "size": size,
                "stored_size": size // (2 if png else 4), "width": width, "height": height,
                "uploaded_by": by, "created_at": opened if kind == "before" else later}))
        for _ in range(n_docs):
            r = bits(32)
            type_id = DOC_TYPES[r % 7]
            options = DOC_KINDS[type_id]
            mime, ext = options[(r >> 3) % len(options)]
            size = 40_000 + (r >> 11 & 0xFFFFF)  # 40 KB to 1.1 MB
            id_ = len(documents) + 1
            row = {"ID": id_, "uuid": f"{doc_prefix}{(id_ * _K + doc_offset) & _MASK:012x}", "org_id": org_id,
                   "job_id": job_id, "file_type_id": type_id,
                   "file_name": f"{names.get(type_id, 'Document')}_{job['job_ref']}.{ext}", "mime_type": mime,
                   "size": size, "stored_size": size, "uploaded_by": by, "created_at": later}
            if ext == "jpg":
                row["width"], row["height"] = 1600, 1200
            documents.append(document(row))
    return {"photos": photos, "documents": documents}
