"""Seeded case notes and their attachment metadata.

The documented note (ID 501 on job 1001, seed 002's case-notes example) is kept exactly, with its two
attachments. Other jobs get a few notes each: about `SHARE` of the jobs, 1 to `MAX_PER_JOB` notes,
written by the organisation's staff or the job's own agent/contractor accounts, at times within the
job's life (created_at .. updated_at). One seeded stream (`"{seed}:notes"`) makes every choice and
every uuid, and only jobs that get notes parse timestamps, so 100,000 jobs stay cheap. Seeded
attachments are metadata only (``blob`` None): their bytes were never uploaded to the sandbox.
"""

from __future__ import annotations

import calendar
import random
import uuid
from datetime import datetime

from .seed import _ts
from .storage import row_maker

SHARE = 0.3
MAX_PER_JOB = 3
ATTACHMENT_SHARE = 0.15  # of generated notes, one metadata-only attachment
EMAIL_SHARE = 0.15
PIN_SHARE = 0.05
_TS = "%Y-%m-%dT%H:%M:%SZ"

DOC_JOB, DOC_NOTE_ID = 1001, 501
DOC_NOTE = {
    "ID": DOC_NOTE_ID, "uuid": "550e8400-e29b-41d4-a716-446655440050", "job_id": DOC_JOB,
    "message": "Contractor attended site and completed boiler service.", "created_by": 7, "send_email": False,
    "is_pinned": False, "created_at": "2024-06-01T14:00:00Z", "updated_at": "2024-06-01T14:00:00Z",
}
DOC_FILES = (("boiler_service_report.pdf", "application/pdf", 142_032),
             ("boiler_after_service.jpg", "image/jpeg", 486_211))

MESSAGES = (
    "Called the tenant to arrange access; awaiting confirmation of a suitable slot.",
    "Contractor confirmed attendance for the scheduled date.",
    "Tenant reported the issue is getting worse; priority reviewed.",
    "Parts ordered, expected within 3-5 working days.",
    "Contractor attended site; further works required, quote to follow.",
    "Quote received and forwarded to the landlord for approval.",
    "Landlord approved the quote; works can proceed.",
    "No access on arrival; card left and tenant contacted.",
    "Works completed; photos uploaded to the job.",
    "Invoice query raised with the contractor.",
    "Access arranged via the key safe; code shared with the contractor.",
    "Follow-up visit booked to check the repair.",
)
FILES = (("site_photo.jpg", "image/jpeg"), ("quote.pdf", "application/pdf"), ("invoice.pdf", "application/pdf"),
         ("before.png", "image/png"))


def _epoch(text: str) -> int:
    # "YYYY-MM-DDTHH:MM:SSZ" by slicing: several times cheaper than strptime, and 100k jobs parse it.
    return calendar.timegm((int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                            int(text[17:19])))


def build(tables: dict[str, list[dict]], seed: int, clock_start: datetime) -> dict[str, list[dict]]:
    rng = random.Random(f"{seed}:notes")

    def new_uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    users = tables.get("users", [])
    staff: dict[int, list[int]] = {}
    for u in users:
        if u["account_type_id"] == 1 and u["role"] != "SysOps":
            staff.setdefault(u["org_id"], []).append(u["ID"])
    by_agent = {u["agent_id"]: u["ID"] for u in users if u.get("agent_id") is not None}
    by_contractor = {u["contractor_id"]: u["ID"] for u in users if u.get("contractor_id") is not None}
    user_ids = {u["ID"] for u in users}

    note_row, file_row = row_maker("case_notes"), row_maker("case_note_attachments")  # compact rows
    notes: list[dict] = []
    files: list[dict] = []
    note_ids = (i for i in range(1, 1 << 31) if i != DOC_NOTE_ID)
    file_ids = iter(range(1, 1 << 31))

    def attach(note: dict, name: str, mime: str, size: int) -> None:
        files.append(file_row({"ID": next(file_ids), "uuid": new_uuid(), "org_id": note["org_id"],
                               "job_id": note["job_id"], "note_id": note["ID"], "file_name": name, "mime_type": mime,
                               "size": size, "blob": None, "created_at": note["created_at"]}))

    for job in tables.get("jobs", []):
        if job["ID"] == DOC_JOB:
            if DOC_NOTE["created_by"] in user_ids:
                note = {**DOC_NOTE, "org_id": job["org_id"]}
                notes.append(note)
                for name, mime, size in DOC_FILES:
                    attach(note, name, mime, size)
            continue  # job 1001 shows exactly the documented note
        if rng.random() >= SHARE:
            continue
        authors = list(staff.get(job["org_id"], ()))
        for person, index in ((job.get("agent_id"), by_agent), (job.get("contractor_id"), by_contractor)):
            if person in index:
                authors.append(index[person])
        if not authors:
            continue
        start, end = _epoch(job["created_at"]), _epoch(job["updated_at"])
        times = sorted(start + int(rng.random() * max(0, end - start)) for _ in range(rng.randint(1, MAX_PER_JOB)))
        for t in times:
            note = note_row({"ID": next(note_ids), "uuid": new_uuid(), "org_id": job["org_id"], "job_id": job["ID"],
                    "message": MESSAGES[int(rng.random() * len(MESSAGES))],
                    "created_by": authors[int(rng.random() * len(authors))],
                    "send_email": rng.random() < EMAIL_SHARE, "is_pinned": rng.random() < PIN_SHARE,
                    "created_at": (at := _ts(t)), "updated_at": at})
            notes.append(note)
            if rng.random() < ATTACHMENT_SHARE:
                name, mime = FILES[int(rng.random() * len(FILES))]
                attach(note, name, mime, rng.randint(20_000, 2_000_000))
    notes.sort(key=lambda n: n["ID"])
    return {"case_notes": notes, "case_note_attachments": files}
