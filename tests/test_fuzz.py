"""Schemathesis against the live /openapi.json: every operation, signed in as the admin with the CSRF header.

One sandbox on real uvicorn for the module. Every operation starts from the same snapshot (taken after
signing in, with the clock frozen), so the deletes and archives of one operation never hide another's
documented example records (job 1001 and the rest). Hypothesis is derandomized and keeps no example
database, so a given tree runs the same cases every time (Hypothesis also draws constants from local,
non-installed source files: a checkout and an installed package, as in CI, get different but equally fixed
cases). The rate limit is raised out of the way: a wall of 429s would hide real behaviour.

Each operation gets cases within its schema (positive) and against it (negative; some of those drop the
token, so 401s are expected). Positive cases mostly have their identifiers swapped for real records (this
organisation's, and one of the other's), so handlers get past "not found" to the code behind it; upload
fields carry real files (a JPEG, PNG, PDF, DOCX, SVG, a branches CSV, or schemathesis' own samples).
Every response must pass four checks: not a 5xx (no scenario is active, so any 5xx is a bug), its body
matches the documented schema, its content type and its status code are documented.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from sandbox import Settings, media
from sandbox.store import Store
from sandbox.testing import LiveServer

CLOCK_START = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
JOB_1001 = "550e8400-e29b-41d4-a716-446655440001"
POSITIVE, NEGATIVE = 60, 20  # examples per operation; operations with few distinct inputs run out earlier
MIN_CASES = 5000
MULTIPART = "multipart/form-data"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.status_code_conformance,
]
SETTINGS = {"derandomize": True, "database": None, "deadline": None, "suppress_health_check": list(HealthCheck),
            "phases": [Phase.explicit, Phase.generate, Phase.shrink]}

# Which table a field's identifier points into (`<prefix>_id` / `<prefix>_uuid`, or the whole name).
TABLES = {
    "job": "jobs", "parent_job": "jobs", "remedial_job": "jobs", "remedials_job": "jobs", "branch": "branches",
    "agent": "agents", "contractor": "contractors", "tenant": "tenants", "address": "addresses",
    "tenant_address": "addresses", "document": "documents", "photo": "photos", "case_note": "case_notes",
    "note": "case_notes", "cert": "certifications", "user": "users", "created_by": "users", "id": "photos",
    "priority": "priorities", "status": "statuses", "job_status_from": "statuses", "job_status_to": "statuses",
    "job_type": "job_types", "file_type": "file_types", "document_type": "file_types", "trade": "trades",
    "payment_status": "payment_statuses", "time_range": "time_ranges", "amend_request": "amend_requests",
    "commit": "job_commits",
}
FILES = ("photos", "documents", "case_note_attachments")
# What a bare `uuid` names, by path prefix (the pools below).
UUIDS = (("/api/jobs/manage", "job_uuid"), ("/api/jobs/case-notes", "case_note_uuid"), ("/api/jobs/amend", "job_uuid"),
         ("/api/jobs/", "file_uuid"), ("/attachment/", "file_uuid"), ("/api/agents/", "branch_uuid"),
         ("/api/admin/", "branch_uuid"), ("/api/tenants/", "tenant_uuid"))
# Real files for the upload fields of multipart cases (the rest come from schemathesis' own samples).
UPLOADS = [media.placeholder_image("fuzz", "jpeg", 64, 48, "fuzz"), media.placeholder_image("fuzz", "png", 32, 32, "f"),
           media.placeholder_pdf("fuzz"), media.placeholder_docx("fuzz"),
           b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>']
BRANCHES_CSV = b"branch_name,address_line_1,city,postcode,contact_number,shared_email\r\n" \
               b"Fuzz Lettings,1 High Street,Leeds,LS1 4AP,0113 496 0000,fuzz@example.com\r\n"
UPLOAD_POOLS = {"file": UPLOADS, "photo": UPLOADS, "logo": UPLOADS, "csv_file": [BRANCHES_CSV], "avatar": UPLOADS,
                "banner_file": UPLOADS}
UPLOADING = {"POST /api/jobs/photos", "POST /api/jobs/documents", "POST /api/contractors/certification",
             "POST /api/agents/branch-logo", "POST /api/admin/branches", "POST /api/users/avatar",
             "POST /api/users/appearance"}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START, rate_limit=10**9)) as server:
        yield server


def _sample(store: Store, table: str) -> list[dict[str, Any]]:
    """A few rows of each organisation, of each file type for file tables: own records first."""
    rows = store.select(table)
    picked, seen = [], Counter()
    for row in rows:
        kind = (row.get("org_id") == 1, row.get("mime_type"))
        if seen[kind] < (4 if kind[0] else 1):
            seen[kind] += 1
            picked.append(row)
    return picked


def _pools(store: Store) -> dict[str, list[Any]]:
    """Field name -> real values to steer it to."""
    pools: dict[str, list[Any]] = {}
    for prefix, table in TABLES.items():
        rows = _sample(store, table)
        if rows:
            pools[prefix if prefix == "id" else prefix + "_id"] = [r["ID"] for r in rows]
            if "uuid" in rows[0] and prefix != "id":
                pools[prefix + "_uuid"] = [r["uuid"] for r in rows]
    pools["job_uuid"].insert(0, JOB_1001)
    pools["tenants_ids"] = [[i] for i in pools["tenant_id"][:3]]
    files = [r["uuid"] for table in FILES for r in _sample(store, table)]
    pools["file_uuid"] = files
    pools["file"] = [r["file_name"] for r in _sample(store, "certifications")]  # a certificate's name (GET)
    return pools


def _steer(case: schemathesis.Case, data: st.DataObject, pools: dict[str, list[Any]]) -> None:
    """Swap most identifiers and files of a positive case for real ones (each field three times in four)."""
    for where in (case.path_parameters, case.query, case.body):
        if not isinstance(where, dict):
            continue
        multipart = where is case.body and case.media_type == MULTIPART
        chosen = {**pools, **UPLOAD_POOLS} if multipart else pools
        if multipart:  # an upload left without its file or its record half the time: fill those in
            for name in _upload_fields(case.operation):
                if name not in where and name in chosen and data.draw(st.booleans(), label=f"add {name}"):
                    where[name] = chosen[name][0]
        for name in list(where):
            if name in chosen:
                pool = chosen[name]
            elif name == "uuid":  # whose uuid depends on the path
                pool = pools.get(next((key for p, key in UUIDS if case.path.startswith(p)), ""), [])
            else:
                continue
            if pool and data.draw(st.integers(0, 3), label=f"steer {name}"):
                where[name] = data.draw(st.sampled_from(pool), label=name)


def _cases(op: schemathesis.APIOperation, mode: GenerationMode) -> st.SearchStrategy[schemathesis.Case]:
    """The operation's cases; uploads get as many again sent as multipart/form-data (else one in three)."""
    cases = op.as_strategy(mode)
    if _is_upload(op):
        cases |= op.as_strategy(mode, media_type=MULTIPART)
    return cases


def _is_upload(op: schemathesis.APIOperation) -> bool:
    return bool(_upload_fields(op))


def _upload_fields(op: schemathesis.APIOperation) -> list[str]:
    """The fields of the operation's multipart (upload) body."""
    return [name for body in op.body if body.media_type == MULTIPART
            for name in body.definition["schema"].get("properties", {})]


def _fuzz(op: schemathesis.APIOperation, mode: GenerationMode, examples: int, call: Any) -> None:
    @settings(max_examples=examples, **SETTINGS)
    @given(case=_cases(op, mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        call(case, data, mode)

    run()


def _has_inputs(op: schemathesis.APIOperation) -> bool:
    return bool(op.path_parameters or op.query or op.body)


def test_every_operation_survives_the_fuzzer(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    with live.client() as client:
        headers = {k: client.headers[k] for k in ("Authorization", "X-CSRF-Token")}
    live.sandbox.clock.freeze()
    live.sandbox.save_snapshot("fuzz")
    pools = _pools(live.sandbox.store)
    operations = [result.ok() for result in schema.get_all_operations()]
    seen: dict[str, Counter[int]] = defaultdict(Counter)  # operation -> statuses answered
    multipart: Counter[str] = Counter()  # operation -> multipart requests sent
    uploaded: Counter[str] = Counter()  # operation -> multipart requests answered with a 2xx
    failures: dict[str, str] = {}
    with requests.Session() as session:

        def call(case: schemathesis.Case, data: st.DataObject, mode: GenerationMode) -> None:
            if mode is GenerationMode.POSITIVE:
                _steer(case, data, pools)
            response = case.call(session=session, headers=headers, timeout=30)
            label = case.operation.label
            seen[label][response.status_code] += 1
            if case.media_type == MULTIPART:
                multipart[label] += 1
                uploaded[label] += response.status_code < 300
            case.validate_response(response, checks=CHECKS, headers=headers)

        for op in operations:
            live.sandbox.restore_snapshot("fuzz")
            for mode, examples in ((GenerationMode.POSITIVE, POSITIVE), (GenerationMode.NEGATIVE, NEGATIVE)):
                if mode is GenerationMode.NEGATIVE and not _has_inputs(op):
                    continue  # nothing to break: negative generation would be unsatisfiable
                try:
                    _fuzz(op, mode, examples, call)
                except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
                    failures[f"{op.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"== {label}\n{why}" for label, why in failures.items())
    assert len(operations) >= 70 and set(seen) == {op.label for op in operations}
    assert sum(sum(answers.values()) for answers in seen.values()) >= MIN_CASES
    # The documented records stayed reachable: files were downloaded, uploads stored.
    assert seen["GET /attachment/{uuid}"][200] and seen["GET /attachment/{uuid}/thumbnail"][200]
    assert {op.label for op in operations if _is_upload(op)} == set(multipart) == UPLOADING
    assert sum(uploaded.values()) >= 5, uploaded
