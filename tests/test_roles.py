"""Every read endpoint for every demo account: 200 where the role holds the endpoint's key, else 403."""

from __future__ import annotations

import pytest
from conftest import ACCOUNTS, JOB_1001, assert_envelope_headers

from sandbox.app import routes
from sandbox.auth import load_catalogue, load_roles

ROLES = load_roles(load_catalogue())
ROLE_OF = {
    "admin@sandbox.propops.test": "SysOps", "staff@sandbox.propops.test": "Staff",
    "agent@sandbox.propops.test": "Agent", "contractor@sandbox.propops.test": "Contractor",
    "api@sandbox.propops.test": "API", "admin@other.propops.test": "SysOps",
}
READS = [row for row in routes().rows if row.method == "GET" and row.auth == "required"]
SAMPLE = {"uuid": JOB_1001, "job_uuid": JOB_1001, "job_id": 1001, "from_date": "2024-06-01", "to_date": "2024-06-30",
          "tenant_uuid": "990e8400-e29b-41d4-a716-446655440001", "branch_id": 1,
          "agent_uuid": "880e8400-e29b-41d4-a716-446655440001", "file": "cert_20_5_1704873600.pdf",
          "q": "boiler", "notification_id": 1, "service_id": "srv_550e8400-e29b-41d4-a716-001", "workflow_id": "wf_001"}


@pytest.mark.parametrize("email", ACCOUNTS)
def test_each_role_gets_exactly_the_reads_its_keys_allow(server, email):
    keys = ROLES[ROLE_OF[email]]["keys"]
    with server.client(email, csrf=False) as client:
        for row in READS:
            params = {"action": row.actions[0]} if row.actions else {}
            params |= {p.name: SAMPLE[p.name] for p in row.params if p.name in SAMPLE}
            path = row.path.format(**SAMPLE)
            if row.errors == "text":  # /attachment/: plain-text errors, the headers all the same
                params.pop("uuid", None)
            r = client.get(path, params=params)
            if r.headers["content-type"].startswith("application/json"):
                assert_envelope_headers(r)
            else:  # a download, or /attachment/'s plain-text errors: the same headers all the same
                assert "X-RateLimit-Remaining" in r.headers and "X-Response-Time-ms" in r.headers
            allowed = row.permission is None or row.permission in keys
            if not allowed:
                assert r.status_code == 403, (row.path, params, r.text)
            elif email == "admin@other.propops.test" and {"uuid", "job_uuid", "job_id"} & params.keys():
                assert r.status_code == 404, (row.path, r.text)  # job 1001 is another organisation's
            else:
                # Past the permission gate; a sample uuid of the wrong kind may still be a 404.
                assert r.status_code in (200, 404), (row.path, params, r.text)
