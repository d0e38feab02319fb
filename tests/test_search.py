"""Global search and settings search: matching, highlights, per-type limits and the caller's scope."""

from __future__ import annotations

from conftest import AGENT, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

TYPES = {"jobs", "users", "branches", "settings", "contractors", "agents", "tenants", "addresses"}


def _search(client, **params) -> dict:
    r = client.get("/api/search", params=params)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and set(body["data"]) == TYPES and isinstance(body["elapsed_ms"], int)
    return body


def test_jobs_match_title_ref_and_address_with_a_marked_highlight(server, admin):
    store = server.sandbox.store
    body = _search(admin, q="  boiler   SERVICE ", limit=50)
    assert body["query"] == "boiler SERVICE"
    expected = {j["ID"] for j in store.select("jobs", lambda r: r["org_id"] == 1 and any(
        "boiler service" in (r.get(f) or "").lower() for f in ("job_title", "job_description")))}
    jobs = body["data"]["jobs"]
    assert expected and {hit["ID"] for hit in jobs} == expected
    for hit in jobs:
        row = store.raw("jobs", hit["ID"])
        assert hit["uuid"] == row["uuid"] and hit["job_ref"] == row["job_ref"] and hit["job_title"] == row["job_title"]
        assert "<mark>boiler service</mark>" in hit["highlight"].lower()
        assert hit["status_name"] == store.raw("statuses", row["status_id"])["name"]
        assert hit["full_address"] == store.raw("addresses", row["address_id"])["full_address"]
    assert len(_search(admin, q="boiler")["data"]["jobs"]) == 10  # the default limit per type
    assert len(_search(admin, q="boiler", limit=3)["data"]["jobs"]) == 3
    by_ref = _search(admin, q="job-001", types="jobs")["data"]
    assert by_ref["jobs"][0]["uuid"] == JOB_1001 and "<mark>JOB-001</mark>" in by_ref["jobs"][0]["highlight"]
    assert by_ref["users"] == [] and by_ref["tenants"] == []  # types not asked for stay empty
    address = store.raw("addresses", store.raw_by_uuid("jobs", JOB_1001)["address_id"])["full_address"]
    assert JOB_1001 in [j["uuid"] for j in _search(admin, q=address, types="jobs", limit=50)["data"]["jobs"]]


def test_highlights_escape_html_around_the_mark(server, admin):
    r = admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001,
                                             "job_title": "Fix <b>leaky</b> valve & tap"})
    assert r.status_code == 200, r.text
    hit = _search(admin, q="leaky", types="jobs")["data"]["jobs"]
    assert [h["uuid"] for h in hit] == [JOB_1001]
    assert hit[0]["highlight"] == "Fix &lt;b&gt;<mark>leaky</mark>&lt;/b&gt; valve &amp; tap"


def test_people_are_found_by_decrypted_names_and_emails(server, admin):
    store = server.sandbox.store
    users = _search(admin, q="agent@sandbox", types="users")["data"]["users"]
    assert [(u["email"], u["account_type"]) for u in users] == [("agent@sandbox.propops.test", "agent")]
    tenant = store.reveal("tenants", store.raw("tenants", 100))
    assert store.raw("tenants", 100)["tenant_name"] != tenant["tenant_name"]  # ciphertext at rest
    hits = _search(admin, q=tenant["tenant_name"], types="tenants")["data"]["tenants"]
    assert hits[0]["uuid"] == tenant["uuid"] and hits[0]["tenant_email"] == tenant["tenant_email"]
    data = _search(admin, q="Contractor_001", types="contractors,agents")["data"]
    assert data["contractors"][0]["ID"] == 20 and data["contractors"][0]["email"] == "contractor001@example.com"
    data = _search(admin, q="agent001@example.com")["data"]
    assert [a["ID"] for a in data["agents"]] == [10] and data["agents"][0]["name"] == "Agent_001 Surname_001"
    assert [b["ID"] for b in _search(admin, q="branch_001", types="branches")["data"]["branches"]] == [1]
    assert [p["title"] for p in _search(admin, q="sla response", types="settings")["data"]["settings"]] == ["Branches"]


def test_an_agent_finds_only_their_branch(server):
    store = server.sandbox.store
    with server.client(AGENT) as agent:
        data = _search(agent, q="unit", limit=50)["data"]
        assert data["jobs"] and all(store.raw("jobs", j["ID"])["branch_id"] == 1 for j in data["jobs"])
        assert data["users"] == [] and data["settings"] == []
        assert _search(agent, q="Branch_00", types="branches")["data"]["branches"] == [
            {"ID": 1, "uuid": store.raw("branches", 1)["uuid"], "branch_name": "Branch_001", "city": "Sample City",
             "postcode": "SC1 1AA", "is_active": True}]
        agents = _search(agent, q="@example.com", types="agents", limit=50)["data"]["agents"]
        assert agents and all(1 in store.raw("agents", a["ID"])["branch_ids"] for a in agents)
        tenants = _search(agent, q="tenant", types="tenants", limit=50)["data"]["tenants"]
        assert tenants and all(store.raw("addresses", t["address_id"])["branch_id"] == 1 for t in tenants)
        everywhere = [a["full_address"].lower() for a in store.select("addresses", lambda r: r["org_id"] == 1)]
        q = next(q for q in ("er", "an", "on", "re", "st", "ro") if sum(q in a for a in everywhere) > 30)
        addresses = _search(agent, q=q, types="addresses", limit=50)["data"]["addresses"]
        assert addresses and {a["branch_id"] for a in addresses} == {1}
        assert _search(agent, q="Contractor_001", types="contractors")["data"]["contractors"][0]["ID"] == 20
        r = agent.get("/api/system/search", params={"q": "branches"})
        assert r.status_code == 200 and r.json()["data"] == []


def test_deleted_users_are_not_found(server, admin):
    assert [u["id"] for u in _search(admin, q="staff001@example", types="users")["data"]["users"]] == [7]
    uuid = server.sandbox.store.raw("users", 7)["uuid"]
    r = admin.post("/api/users/users", json={"action": "delete_user", "uuid": uuid})
    assert r.status_code == 200, r.text
    assert _search(admin, q="staff001@example", types="users")["data"]["users"] == []


def test_staff_search_everything_of_their_organisation_only(server):
    store = server.sandbox.store
    with server.client(STAFF) as staff:
        assert _search(staff, q="staff@sandbox", types="users")["data"]["users"][0]["account_type"] == "staff"
    with server.client(OTHER_ADMIN) as other:
        data: dict[str, list] = {}
        for q in ("co", "er", "an", "on"):
            for kind, rows in _search(other, q=q, limit=50)["data"].items():
                data.setdefault(kind, []).extend(rows)
        for kind, table in (("jobs", "jobs"), ("branches", "branches"), ("contractors", "contractors"),
                            ("agents", "agents"), ("tenants", "tenants"), ("addresses", "addresses")):
            assert data[kind], kind
            assert {store.raw(table, row["ID"])["org_id"] for row in data[kind]} == {2}, kind
        assert {store.raw("users", u["id"])["org_id"] for u in data["users"]} == {2}
        assert _search(other, q="JOB-001")["data"]["jobs"] == []


def test_a_contractor_finds_only_its_own_jobs(server, admin):
    """Search guide: "a contractor only gets their own jobs" (contractor 20 is the demo contractor)."""
    store = server.sandbox.store
    theirs = {j["ID"] for j in store.select("jobs", lambda r: r["contractor_id"] == 20 and "boiler" in (
        (r.get("job_title") or "") + " " + (r.get("job_description") or "")).lower())}
    with server.client(CONTRACTOR) as contractor:
        data = _search(contractor, q="boiler", limit=50)["data"]
        assert theirs and {j["ID"] for j in data["jobs"]} <= theirs
        assert {j["ID"] for j in _search(admin, q="boiler", limit=50)["data"]["jobs"]} - theirs  # admin sees more
        assert data["users"] == [] and data["settings"] == []
        r = contractor.get("/api/system/search", params={"q": "branch"})
        assert r.status_code == 200 and r.json()["data"] == []  # settings pages are for Staff


def test_bad_search_parameters_are_refused(server, admin, anon):
    for params, name in (({}, "q"), ({"q": "a"}, "q"), ({"q": " a  "}, "q"), ({"q": "x" * 201}, "q"),
                         ({"q": "boiler", "types": "jobs,planets"}, "types"), ({"q": "boiler", "types": ","}, "types"),
                         ({"q": "boiler", "limit": 51}, "limit"), ({"q": "boiler", "limit": 0}, "limit")):
        assert_error(admin.get("/api/search", params=params), 400, name)
    assert_error(admin.get("/api/system/search", params={"q": "b"}), 400, "q")
    assert_error(anon.get("/api/search", params={"q": "boiler"}), 401)


def test_settings_search_lists_matching_settings_pages(server, admin):
    r = admin.get("/api/system/search", params={"q": "PERMISSION"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "PERMISSION" and body["count"] == len(body["data"]) >= 1
    assert body["data"][0] == {"title": "Roles and Permissions", "section": "People", "url": "/settings/permissions",
                               "description": "Role levels and permission keys for each account type"}
    assert admin.get("/api/system/search", params={"q": "zzzz"}).json()["data"] == []
    assert len(admin.get("/api/system/search", params={"q": "se", "limit": 2}).json()["data"]) == 2
