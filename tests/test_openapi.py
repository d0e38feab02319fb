"""/openapi.json (validated OpenAPI 3.1, generated from the endpoint tables) and /docs."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate

from sandbox import openapi
from sandbox.app import routes

ROWS = routes().rows


@pytest.fixture
def spec(server):
    r = httpx.get(server.url + "/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return r.json()


def test_the_document_validates(spec):
    validate(spec)
    assert spec["openapi"] == "3.1.0"


def test_every_table_row_is_an_operation_with_its_actions_and_keys(spec):
    for row in ROWS:
        op = spec["paths"][row.path][row.method.lower()]
        listed = {(a["action"], a["permission"], a["csrf"]) for a in op["x-actions"]}
        for action in row.actions or (None,):
            assert (action, row.permission, row.csrf) in listed, (row.method, row.path, action)
        if row.permission:
            assert row.permission in op["x-permission"]


def test_parameters_carry_types_ranges_enums_and_required(spec):
    listing = spec["paths"]["/api/jobs/manage"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["action"]["required"] is True and "list" in params["action"]["schema"]["enum"]
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                                         "description": "page size"}
    assert params["uuid"]["schema"]["format"] == "uuid"
    create = next(v for v in spec["paths"]["/api/jobs/manage"]["post"]["requestBody"]["content"]
                  ["application/json"]["schema"]["oneOf"] if v["properties"]["action"] == {"const": "create"})
    assert {"action", "job_title", "job_description", "priority_id", "status_id", "job_type_id",
            "address_id"} <= set(create["required"])
    assert create["properties"]["tenants_ids"] == {"type": "array", "items": {"type": "integer"}}
    assert create["properties"]["private_contact_email"]["format"] == "email"
    upload = spec["paths"]["/api/jobs/photos"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload


def test_security_csrf_and_error_examples(spec):
    login = spec["paths"]["/api/auth/login"]["post"]
    assert login["security"] == [] and login["x-csrf"] is False
    manage = spec["paths"]["/api/jobs/manage"]["post"]
    assert manage["security"] == [{"bearerAuth": []}] and manage["x-csrf"] is True
    assert manage["responses"]["403"]["content"]["application/json"]["example"]["error"].startswith("Invalid or")
    assert manage["responses"]["401"]["content"]["application/json"]["example"] == {
        "success": False, "error": "Authentication required. Please log in."}
    health = spec["paths"]["/api/system/heartbeat"]["get"]
    assert {} in health["security"]
    assert spec["paths"]["/attachment/{uuid}"]["get"]["parameters"][0]["in"] == "path"


def test_the_docs_page_is_self_contained_and_lists_every_path(server, spec):
    r = httpx.get(server.url + "/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(src|href)=["']?https?://""", r.text)
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in r.text
    assert "api.jobs.manage.manage" in r.text and "CSRF required" in r.text


def _documents(op: dict, response: httpx.Response) -> bool:
    """Whether `op` documents the response's status with its media type (`*/*` matches any)."""
    documented = op["responses"].get(str(response.status_code), {}).get("content", {})
    media = response.headers["content-type"].split(";")[0].strip()
    return media in documented or "*/*" in documented


def test_answers_that_are_not_the_json_envelope_are_documented(server, admin, spec):
    # Found by the fuzzer (tests/test_fuzz.py): CSV, file bytes and plain-text errors were undocumented.
    branches = spec["paths"]["/api/admin/branches"]["get"]
    template = admin.get("/api/admin/branches", params={"action": "download_template"})
    assert template.status_code == 200 and _documents(branches, template)
    assert set(branches["responses"]["200"]["content"]) == {"application/json", "text/csv"}

    attachment = spec["paths"]["/attachment/{uuid}"]["get"]
    photo = server.sandbox.store.select("photos", lambda r: r["org_id"] == 1 and not r.get("archived"))[0]
    r = admin.get(f"/attachment/{photo['uuid']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and _documents(attachment, r)
    assert "application/json" not in attachment["responses"]["200"]["content"]
    missing = admin.get("/attachment/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.text == "Attachment not found" and _documents(attachment, missing)
    assert attachment["responses"]["404"]["content"]["text/plain"]["example"] == "Attachment not found"
    assert "application/json" not in attachment["responses"]["404"]["content"]

    thumbnail = spec["paths"]["/api/jobs/document-thumbnail"]["get"]
    r = admin.get("/api/jobs/document-thumbnail", params={"uuid": photo["uuid"]})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and _documents(thumbnail, r)


def test_every_listed_download_is_an_operation(spec):
    for method, path in openapi._DOWNLOADS:
        assert method.lower() in spec["paths"][path], (method, path)


def test_every_success_status_of_an_operation_is_documented(spec):
    # Found by the fuzzer: POST /api/jobs/manage documented only 200, but its create answers 201.
    manage = spec["paths"]["/api/jobs/manage"]["post"]["responses"]
    assert {"200", "201"} <= set(manage)
    assert manage["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Envelope"}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            statuses = {str(r.status) for r in ROWS if r.path == path and r.method.lower() == method}
            assert statuses <= set(op["responses"]), (method, path)


def test_too_large_bodies_and_maintenance_are_documented(admin, spec):
    manage = spec["paths"]["/api/jobs/manage"]
    assert "413" in manage["post"]["responses"] and "413" not in manage["get"]["responses"]
    r = admin.post("/api/jobs/manage", content=b'{"a": "' + b"x" * (3 * 1024 * 1024) + b'"}',
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and _documents(manage["post"], r)
    assert "503" in manage["get"]["responses"]


def test_uploads_are_multipart_with_binary_file_parts(spec):
    for path, field in (("/api/jobs/photos", "file"), ("/api/jobs/documents", "file"),
                        ("/api/contractors/certification", "file"), ("/api/agents/branch-logo", "logo"),
                        ("/api/admin/branches", "csv_file")):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        multipart = content["multipart/form-data"]["schema"]
        # One object schema (the upload action), so tools see which parts are files and send a filename.
        assert multipart["properties"][field] == {"type": "string", "format": "binary",
                                                  "contentMediaType": "application/octet-stream"}
        json_body = content["application/json"]["schema"]
        variants = json_body.get("oneOf", [json_body])
        # Files never travel as JSON (a certificate's `file` elsewhere is its name, a string).
        assert all(v["properties"].get(field, {}).get("format") != "binary" for v in variants), path
    assert "multipart/form-data" not in spec["paths"]["/api/jobs/manage"]["post"]["requestBody"]["content"]
