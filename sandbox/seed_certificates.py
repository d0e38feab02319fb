"""Seeded contractor certifications: 1 to 3 per contractor, metadata only (``blob`` is absent, so the view
endpoint serves placeholder bytes of the recorded type, as for seeded documents).

The certificate types follow the contractor's trades (Gas Safe for Gas & Heating, NICEIC for Electrical,
…) plus public liability insurance. Expiry dates are offsets from `clock_start`, so every build has a mix
of valid, expiring (within 30 days) and expired certificates whatever the clock. Contractor 20 (the
documented contractor) always has certificates 3, 4 and 5 — one expiring, one expired, one valid — and
certificate 5 is the documented example file ``cert_20_5_1704873600.pdf`` (uploaded 2024-01-10T08:00Z).
Certificate IDs start at 3 (like the recipe's ``id_start``) so that the example keeps its ID.

Everything comes from ``random.Random(f"{seed}:certs")`` and the given tables; never the wall clock.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

ID_START = 3
DOCUMENTED_CONTRACTOR = 20
_DAY = 86_400
TRADE_CERTS = {1: "Gas Safe Certificate", 2: "WaterSafe Accreditation", 3: "NICEIC Certificate",
               4: "CompetentRoofer Certificate", 5: "Public Liability Insurance"}
INSURANCE = "Public Liability Insurance"
# (mime, extension, weight): most certificates are PDFs, some are photographed cards or Word files.
FILES = (("application/pdf", "pdf", 14), ("image/jpeg", "jpg", 3), ("image/png", "png", 2),
         ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", 1))
# status -> (days from clock_start to the expiry date, lowest, highest); "expiring" is within 30 days.
OFFSETS = {"valid": (45, 400), "expiring": (2, 28), "expired": (-400, -2)}
STATUSES, STATUS_WEIGHTS = ("valid", "expiring", "expired"), (6, 2, 2)


def _ts(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def _epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def build(tables: dict[str, list[dict]], seed: int, clock_start: datetime) -> dict[str, list[dict]]:
    rng = random.Random(f"{seed}:certs")
    clock = int(clock_start.astimezone(UTC).timestamp())
    midnight = clock - clock % _DAY
    uploader = {}  # contractor ID -> the user who uploads its certificates: its own login, else staff
    for user in tables.get("users", ()):
        if user.get("contractor_id") is not None:
            uploader[user["contractor_id"]] = user["ID"]
        elif user.get("account_type_id") == 1:
            uploader.setdefault(("staff", user["org_id"]), user["ID"])
    rows: list[dict] = []
    next_id = ID_START + 3

    def add(contractor: dict, id_: int, cert_type: str, expiry: int, years: int, file: tuple, *,
            uploaded: int | None = None, issued: int | None = None) -> None:
        issued = expiry - years * 365 * _DAY if issued is None else issued
        if uploaded is None:  # some hours after issue, once the contractor is on the system, before now
            joined = _epoch(contractor["created_at"]) if contractor.get("created_at") else issued
            uploaded = min(max(issued, joined) + rng.randint(3_600, 72 * 3_600), clock - 3_600)
        mime, ext = file
        by = uploader.get(contractor["ID"], uploader.get(("staff", contractor["org_id"])))
        rows.append({
            "ID": id_, "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "org_id": contractor["org_id"],
            "contractor_id": contractor["ID"], "cert_type": cert_type, "issue_date": _date(issued),
            "expiry_date": _date(expiry), "file_name": f"cert_{contractor['ID']}_{id_}_{uploaded}.{ext}",
            "mime_type": mime, "size": 60_000 + rng.randint(0, 900_000), "uploaded_by": by,
            "created_at": _ts(uploaded)})

    pdf, jpg = FILES[0][:2], FILES[1][:2]
    kinds, weights = [f[:2] for f in FILES], [f[2] for f in FILES]
    for contractor in tables.get("contractors", ()):
        if contractor["ID"] == DOCUMENTED_CONTRACTOR:
            add(contractor, ID_START, INSURANCE, midnight + 14 * _DAY, 1, pdf)
            add(contractor, ID_START + 1, TRADE_CERTS[2], midnight - 20 * _DAY, 1, jpg)
            add(contractor, ID_START + 2, TRADE_CERTS[1], midnight + 180 * _DAY, 1, pdf,
                uploaded=1_704_873_600, issued=1_704_844_800)  # the documented example, issued that day
            continue
        types = list(dict.fromkeys([TRADE_CERTS[t] for t in contractor.get("trade_ids") or () if t in TRADE_CERTS]
                                   + [INSURANCE]))
        count = min(rng.choice((1, 2, 2, 3, 3)), len(types))
        for cert_type in [types[0], *rng.sample(types[1:], count - 1)]:
            state = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
            lo, hi = OFFSETS[state]
            offset = rng.randint(lo, hi)
            years = max(1, math.ceil((offset + 7) / 365))  # issued at least a week before clock_start
            add(contractor, next_id, cert_type, midnight + offset * _DAY, years,
                rng.choices(kinds, weights)[0])
            next_id += 1
    rows.sort(key=lambda r: r["ID"])
    return {"certifications": rows}


def documented_expiry(clock_start: datetime) -> str:
    """The expiry date of the documented certificate 5 for this clock start (for tests and docs)."""
    return (clock_start.astimezone(UTC).date() + timedelta(days=180)).isoformat()
