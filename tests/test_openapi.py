"""/openapi.json (validated OpenAPI 3.1, generated from the endpoint tables) and /docs."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate

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
