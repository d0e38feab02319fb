"""The endpoint table against the documented list (shared/propops-api/endpoints.json).

The documented list is read from ../shared when it is beside the repository (as in CI) and from the
copy in tests/reference/ otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.app import routes
from sandbox.auth import load_catalogue, load_roles

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "propops-api" / "endpoints.json"
DOCUMENTED = json.loads((SHARED if SHARED.exists() else HERE / "reference" / "endpoints.json").read_text())["endpoints"]
# Documented on pages the endpoint list does not cover: the calendar reference (index.json) and the SLA
# guide (help.propops.app/api/sla).
DOCUMENTED += [
    {"method": "GET", "path": "/api/calendar-jobs", "permission": None, "actions": []},
    {"method": "GET", "path": "/api/sla-breached-jobs", "permission": "api.sla.breached_jobs.read", "actions": []},
]
BY_KEY = {(e["method"], e["path"]): e for e in DOCUMENTED}
ROWS = routes().rows
# Where endpoints.json has no key but the group's reference page names one (README, fidelity notes).
PERMISSION_FROM_GROUP_PAGE = {("GET", "/api/system/status"): "api.system.status.manage"}  # system.json

# What issue #2 (the spine and jobs core) promises; later issues extend this list.
SPINE = [
    ("POST", "/api/auth/login"), ("GET", "/api/security/csrf-token"), ("GET", "/api/users/permissions"),
    ("GET", "/api/system/heartbeat"), ("GET", "/api/system/status"), ("GET", "/api/jobs/manage"),
    ("POST", "/api/jobs/manage"), ("GET", "/api/jobs/statuses"), ("GET", "/api/jobs/types"),
    ("GET", "/api/jobs/priorities"), ("GET", "/api/jobs/payment-statuses"), ("GET", "/api/jobs/time-ranges"),
    ("GET", "/api/jobs/addresses"),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.method} {r.path} {','.join(r.actions)}")
def test_every_row_is_a_documented_endpoint_with_its_documented_permission(row):
    documented = BY_KEY.get((row.method, row.path))
    assert documented, f"{row.method} {row.path} is not in endpoints.json"
    expected = PERMISSION_FROM_GROUP_PAGE.get((row.method, row.path), documented["permission"])
    assert row.permission == expected
    assert set(row.actions) <= set(documented["actions"]), "an action the docs do not list"


def test_the_spine_endpoints_are_routed():
    routed = {(r.method, r.path) for r in ROWS}
    assert [key for key in SPINE if key not in routed] == []


def test_jobs_manage_serves_the_core_actions():
    actions = {(r.method, a) for r in ROWS if r.path == "/api/jobs/manage" for a in r.actions}
    assert {("GET", "list"), ("GET", "get"), ("POST", "create"), ("POST", "update"), ("POST", "delete")} <= actions


def test_permission_keys_come_from_the_documented_catalogue():
    catalogue = set(load_catalogue())
    assert {r.permission for r in ROWS if r.permission} <= catalogue


def test_writes_that_document_csrf_require_it():
    for row in ROWS:
        if row.method != "GET" and row.path == "/api/jobs/manage":
            assert row.csrf, f"{row.method} {row.path} {row.actions}"
        if row.path in ("/api/auth/login", "/api/jobs/toggle-pin", "/api/jobs/mark-recall-completed"):
            assert not row.csrf


def test_roles_expand_to_known_keys_and_sysops_has_them_all():
    catalogue = load_catalogue()
    roles = load_roles(catalogue)
    assert roles["SysOps"]["keys"] == frozenset(catalogue)
    assert "api.jobs.manage.manage" not in roles["Contractor"]["keys"]
    assert {"Staff", "API", "Agent", "Contractor"} <= roles.keys()
    for role in roles.values():
        assert role["keys"] <= set(catalogue)
