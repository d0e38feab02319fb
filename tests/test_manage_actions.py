"""The rest of /api/jobs/manage: commits and restore, assignment notifications, lookups, preview_delete."""

from __future__ import annotations

import pytest
from conftest import AGENT, CONTRACTOR, JOB_1001, OTHER_ADMIN, assert_error


def manage(client, action, **params):
    return client.get("/api/jobs/manage", params={"action": action, **params})


def write(client, action, **body):
    return client.post("/api/jobs/manage", json={"action": action, **body})


def job(client, uuid=JOB_1001):
    return manage(client, "get", uuid=uuid).json()["data"]


def test_every_update_records_a_commit_and_restore_puts_the_values_back(server, admin):
    original = job(admin)
    assert write(admin, "update", uuid=JOB_1001, job_title="Changed", contractor_budget=100,
                 access_details="Ring the bell").status_code == 200
    server.sandbox.clock.advance(60)
    assert write(admin, "update", uuid=JOB_1001, priority_id=4).status_code == 200
    commits = manage(admin, "list_commits", uuid=JOB_1001).json()
    assert commits["count"] == 2
    newest, first = commits["data"]
    assert newest["changes"] == {"priority_id": {"old": 2, "new": 4}}
    assert first["changes"]["job_title"] == {"old": "Boiler Service - Unit 001", "new": "Changed"}
    assert first["changes"]["total_amount"] == {"old": 216.0, "new": 120.0}
    assert first["committed_by"] == "Sandbox Admin" and first["kind"] == "update"
    # The change history holds private fields, so it is encrypted at rest.
    stored = server.sandbox.store.raw("job_commits", first["ID"])
    assert stored["changes"].startswith("enc:v1:") and "Ring the bell" not in stored["changes"]

    r = write(admin, "restore_commit", uuid=JOB_1001, commit_uuid=first["uuid"])
    assert r.status_code == 200 and r.json()["restored_fields"] == sorted(first["fields"])
    restored = job(admin)
    for field in ("job_title", "contractor_budget", "total_amount", "access_details"):
        assert restored[field] == original[field], field
    assert restored["priority_id"] == 4  # the later commit is untouched
    history = manage(admin, "list_commits", uuid=JOB_1001).json()["data"]
    assert history[0]["kind"] == "restore" and len(history) == 3


def test_an_update_that_changes_nothing_records_no_commit(admin):
    write(admin, "update", uuid=JOB_1001, job_title="Boiler Service - Unit 001")
    assert manage(admin, "list_commits", uuid=JOB_1001).json()["count"] == 0


def test_restore_commit_errors(server, admin):
    assert_error(write(admin, "restore_commit", uuid=JOB_1001), 400, "commit_id")
    assert_error(write(admin, "restore_commit", uuid=JOB_1001, commit_id=999), 404, "Commit not found")
    archived = next(r for r in server.sandbox.store.select("jobs") if r["status_id"] == 8 and r["org_id"] == 1)
    assert_error(write(admin, "restore_commit", uuid=archived["uuid"], commit_id=1), 403, "archived")


def test_restore_archived_file(server, admin):
    store = server.sandbox.store
    photo = store.insert("photos", {"ID": None, "uuid": None, "org_id": 1, "job_id": 1001, "archived": True,
                                    "archived_at": "2026-10-01T00:00:00Z", "file_name": "a.jpg"})
    before = job(admin)["photos_count"]
    r = write(admin, "restore_archived_file", uuid=JOB_1001, file_uuid=photo["uuid"])
    assert r.status_code == 200 and r.json()["file_uuid"] == photo["uuid"]
    assert job(admin)["photos_count"] == before + 1 and store.raw("photos", photo["ID"])["archived"] is False
    assert_error(write(admin, "restore_archived_file", uuid=JOB_1001, file_uuid=photo["uuid"]), 400, "not archived")
    other = "550e8400-e29b-41d4-a716-446655441055"
    assert_error(write(admin, "restore_archived_file", uuid=other, file_uuid=photo["uuid"]), 404)
    assert_error(write(admin, "restore_archived_file", uuid=JOB_1001), 400, "file_uuid")


def test_send_assignment_notification_is_recorded_and_readable(server, admin):
    state = manage(admin, "get_assignment_notification_state", uuid=JOB_1001).json()["data"]
    assert state["notified"] is False and state["contractor_id"] == 20
    assert write(admin, "send_assignment_notification", uuid=JOB_1001).status_code == 200
    state = manage(admin, "get_assignment_notification_state", uuid=JOB_1001).json()["data"]
    assert state["notified"] is True and state["notified_at"][:16] == server.sandbox.clock.iso()[:16]
    emails = [server.sandbox.store.reveal("emails", r) for r in server.sandbox.store.select("emails")]
    assert [e["to"] for e in emails] == ["contractor001@example.com"] and emails[0]["template"] == "job_assigned"
    # Reassigning makes the old notification stale.
    write(admin, "update", uuid=JOB_1001, contractor_id=21)
    assert manage(admin, "get_assignment_notification_state", uuid=JOB_1001).json()["data"]["notified"] is False


def test_send_assignment_notification_needs_a_contractor(server, admin):
    unassigned = next(r for r in server.sandbox.store.select("jobs")
                      if r["contractor_id"] is None and r["org_id"] == 1 and r["status_id"] != 8)
    assert_error(write(admin, "send_assignment_notification", uuid=unassigned["uuid"]), 400, "no contractor")


def test_preview_delete_counts_what_delete_removes(server, admin):
    write(admin, "update", uuid=JOB_1001, job_title="x")
    preview = manage(admin, "preview_delete", uuid=JOB_1001).json()["data"]
    assert preview["job_ref"] == "JOB-001" and preview["will_delete"]["job_commits"] == 1
    assert preview["will_delete"]["remedials"] == 1  # job 1055 is its documented remedial
    assert job(admin)["ID"] == 1001  # a preview deletes nothing
    store = server.sandbox.store
    tables = {t: len(store.select(t, lambda r: r.get("job_id") == 1001)) for t in preview["will_delete"]}
    assert write(admin, "delete", uuid=JOB_1001).status_code == 200
    assert all(not store.select(t, lambda r: r.get("job_id") == 1001) for t in tables)


def test_lookups(server, admin):
    types = manage(admin, "get_file_types").json()
    assert {r["name"] for r in types["data"]} >= {"Invoice", "Quote", "Certificate"}
    creators = manage(admin, "get_creators").json()["data"]
    assert "Staff_001 Surname_001" in {c["name"] for c in creators}
    agents = manage(admin, "get_job_agents", branch_id=1, limit=200).json()["data"]
    assert agents and all(a["branch_id"] == 1 or 1 in server.sandbox.store.raw("agents", a["ID"])["branch_ids"]
                          for a in agents)
    assert 10 in {a["ID"] for a in agents}
    plumbers = manage(admin, "get_job_contractors", trade_id=2, limit=200).json()["data"]
    assert plumbers and all(2 in c["trade_ids"] for c in plumbers)
    clients = manage(admin, "get_job_clients", uuid=JOB_1001).json()["data"]
    assert [c["ID"] for c in clients] == [100, 101] and clients[0]["tenant_name"] == "Tenant_001"


def test_lookups_are_scoped(server):
    with server.client(OTHER_ADMIN) as other:
        assert 10 not in {a["ID"] for a in manage(other, "get_job_agents", limit=200).json()["data"]}
        assert_error(manage(other, "get_job_clients", uuid=JOB_1001), 404)
        assert_error(manage(other, "preview_delete", uuid=JOB_1001), 404)
    with server.client(CONTRACTOR) as contractor:
        assert [c["ID"] for c in manage(contractor, "get_job_contractors").json()["data"]] == [20]
        assert_error(write(contractor, "send_assignment_notification", uuid=JOB_1001), 403)


@pytest.mark.parametrize("action", ["list_commits", "get_assignment_notification_state", "preview_delete"])
def test_uuid_actions_need_a_visible_job(server, admin, action):
    assert_error(manage(admin, action), 400, "uuid")
    outside = next(r for r in server.sandbox.store.select("jobs") if r["org_id"] == 1 and r["branch_id"] != 1)
    with server.client(AGENT) as agent:
        assert_error(manage(agent, action, uuid=outside["uuid"]), 404, "Job not found")
        assert manage(agent, action, uuid=JOB_1001).status_code == 200
