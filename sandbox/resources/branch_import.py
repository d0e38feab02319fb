"""Branches by CSV (administration, seed 004): ``GET /api/admin/branches?action=download_template`` (the
header row) and ``POST /api/admin/branches`` with ``action=bulk_import``.

Bulk import reads a CSV with the template columns (UTF-8 with or without BOM, or Windows-1252): blank lines
are ignored, valid rows are created, invalid rows are reported as ``{row, error}`` (``row`` is the line
number, the header being line 1) and rows naming an existing branch are counted in ``skipped``. Each row is
checked exactly as a branch created one at a time (`branches.clean_fields`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

from starlette.responses import Response

from ..auth import STAFF
from ..endpoints import Call, Endpoint, Param, validate
from ..envelope import ApiError, bad_param, ok
from .branches import FIELDS, KEY, PATH, FieldError, clean_fields

TEMPLATE = ("branch_name", "address_line_1", "city", "postcode", "contact_number", "shared_email")
MAX_IMPORT_ROWS = 5000
CSV_PARAMS = (Param("branch_name", required=True, max_length=100), *FIELDS[1:])


async def download_template(call: Call) -> Response:
    out = io.StringIO()
    csv.writer(out).writerow(TEMPLATE)
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="branches-template.csv"'})


async def bulk_import(call: Call) -> dict[str, Any]:
    store, org, now = call.sandbox.store, call.principal.org_id, call.sandbox.clock.iso()
    upload = call.params.get("csv_file")
    header, records = _read_csv(None if upload is None else await upload.read())
    imported, skipped, errors = 0, 0, []
    for line, cells in records:
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            errors.append({"row": line, "error": f"the row has {len(cells)} cells but the header has {len(header)}"})
            continue
        try:
            values = validate(CSV_PARAMS, dict(zip(header, cells, strict=False)))
            fields = clean_fields(store, org, values)
        except ApiError as exc:
            errors.append({"row": line, "error": exc.error})
            continue
        except FieldError as exc:
            if exc.duplicate:
                skipped += 1
            else:
                errors.append({"row": line, "error": f"Invalid or missing required parameter: {exc.name} ({exc.why})"})
            continue
        store.insert("branches", {**{name: None for name in TEMPLATE}, **fields, "ID": None, "uuid": None,
                                  "org_id": org, "is_active": True, "created_at": now})
        imported += 1
    return ok({"imported": imported, "skipped": skipped, "errors": errors}, message=f"{imported} branch(es) imported")


def _read_csv(data: bytes | None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, cells)]) of the non-blank rows; 400 naming csv_file when unreadable."""
    if data is None:
        raise bad_param("csv_file", "required: a CSV file sent as multipart/form-data")
    if not data.strip():
        raise bad_param("csv_file", "the file is empty")
    if b"\x00" in data:
        raise bad_param("csv_file", "must be a CSV text file, not binary data")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise bad_param("csv_file", "must be UTF-8 (or Windows-1252) text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lstrip("\ufeff").lower().replace(" ", "_") for c in cells]
                _check_header(header)
                continue
            records.append((reader.line_num, cells))
            if len(records) > MAX_IMPORT_ROWS:
                raise bad_param("csv_file", f"at most {MAX_IMPORT_ROWS} branches per import")
    except csv.Error as exc:
        raise bad_param("csv_file", f"not a readable CSV file (line {reader.line_num}: {exc})") from None
    if header is None:
        raise bad_param("csv_file", "the file has no header row")
    return header, records


def _check_header(header: list[str]) -> None:
    expected = ",".join(TEMPLATE)
    unknown = [name for name in header if name not in TEMPLATE]
    if unknown:
        raise bad_param("csv_file", f"unknown column(s) {', '.join(map(repr, unknown))}; the header must use "
                                    f"the template columns: {expected} (GET {PATH}?action=download_template)")
    if "branch_name" not in header:
        raise bad_param("csv_file", f"the header has no branch_name column; template columns: {expected}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise bad_param("csv_file", f"column(s) {', '.join(repeated)} appear more than once in the header")


_ROWS = [
    Endpoint("GET", PATH, download_template, KEY, ("download_template",),
             summary="CSV header row of the bulk-import columns (branches-template.csv)"),
    Endpoint("POST", PATH, bulk_import, KEY, ("bulk_import",), csrf=True,
             params=(Param("csv_file", "file", required=True),),
             summary="Create branches from an uploaded CSV (imported / skipped / errors)"),
]

# "All /api/admin/* endpoints require the Staff account type" (admin guide), on top of the key.
ENDPOINTS = [dataclasses.replace(row, account_types=(STAFF,)) for row in _ROWS]
