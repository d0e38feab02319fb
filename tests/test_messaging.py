"""Messaging over real HTTP: e-mail templates, e-mail send in both documented spellings (rendered,
recorded encrypted, never sent; logged on a job), WhatsApp options and send (E.164, recorded on the job),
each role, other organisations, archived jobs, bad input with no state change, CSRF."""

from __future__ import annotations

from conftest import AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

from sandbox.store import ENCRYPTED

SEND, TEMPLATES = "/api/email/send", "/api/email/templates"
WA_SEND, WA_OPTIONS = "/api/whatsapp/send", "/api/whatsapp/get-options"
DOC_SEND = {"template_key": "job_assigned", "recipient_email": "contractor001@example.com",
            "recipient_name": "Contractor_001", "variables": {"job_ref": "JOB-001", "job_title": "Boiler Service"}}


def emails(server) -> list[dict]:
    store = server.sandbox.store
    return [store.reveal("emails", r) for r in store.select("emails")]


def wa(client, **fields):
    return client.post(WA_SEND, json={"job_id": 1001, "phone_number": "+447700900123", "template_id": 1, **fields})


def test_email_templates_list_both_documented_shapes(admin):
    r = admin.get(TEMPLATES)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    first = body["data"][0]
    assert {k: first[k] for k in ("ID", "template_name", "template_key", "subject", "is_active")} == {
        "ID": 1, "template_name": "Job Assignment Notification", "template_key": "job_assigned",
        "subject": "You have been assigned a new job: {{job_ref}}", "is_active": True}
    created = next(t for t in body["data"] if t["name"] == "job_created")
    assert created["required_variables"] == ["recipient_name", "job_ref", "job_title", "property_address"]
    assert body["count"] == len(body["data"]) >= 4


def test_email_send_renders_records_encrypted_and_logs_on_the_job(server, admin):
    r = admin.post(SEND, json={**DOC_SEND, "job_id": 1001})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "Email queued for delivery"
    data = body["data"]
    assert data["status"] == "queued" and data["recipient"] == "contractor001@example.com"
    assert data["template"] == "job_assigned" and data["subject"] == "You have been assigned a new job: JOB-001"
    [sent] = emails(server)
    assert sent["ID"] == data["email_id"] and sent["job_id"] == 1001 and sent["to"] == "contractor001@example.com"
    assert "Hello Contractor_001" in sent["body"] and "JOB-001: Boiler Service" in sent["body"]
    raw = server.sandbox.store.raw("emails", sent["ID"])
    assert "contractor001@example.com" not in str(raw) and "Contractor_001" not in str(raw)  # encrypted at rest
    # The guide's spelling: to / template, no job.
    r = admin.post(SEND, json={"to": "tenant@example.com", "template": "job_update",
                               "variables": {"recipient_name": "Tess", "job_ref": "JOB-002", "status": "Assigned"}})
    assert r.status_code == 200, r.text
    second = emails(server)[1]
    assert (second["to"], second["template"], second["job_id"]) == ("tenant@example.com", "job_update", None)
    assert second["subject"] == "Update on job JOB-002" and "now: Assigned" in second["body"]


def test_email_send_bad_input_changes_nothing(server, admin):
    cases = (({"template_key": None}, "template_key"), ({"recipient_email": None}, "recipient_email"),
             ({"recipient_email": "not-an-address"}, "recipient_email"), ({"template_key": "nope"}, "template_key"),
             ({"template_key": "invoice_reminder"}, "template_key"), ({"variables": {"job_ref": "J"}}, "job_title"),
             ({"variables": [1, 2]}, "variables"),
             ({"variables": {"job_ref": {"a": 1}, "job_title": "x"}}, "variables"),
             ({"job_id": "abc"}, "job_id"))
    for change, word in cases:
        assert_error(admin.post(SEND, json={**DOC_SEND, **change}), 400, word)
    assert emails(server) == []


def test_email_send_roles_scoping_archived_and_csrf(server):
    archived = next(j for j in server.sandbox.store.select("jobs", lambda r: r["status_id"] == 8 and r["org_id"] == 1))
    with server.client(STAFF) as staff:
        assert staff.post(SEND, json=DOC_SEND).status_code == 200
        assert_error(staff.post(SEND, json={**DOC_SEND, "job_id": archived["ID"]}), 403, "archived")
    with server.client(API) as api:
        assert api.get(TEMPLATES).status_code == 200
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post(SEND, json={**DOC_SEND, "job_id": 1001}), 404, "Job not found")
    for email in (AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert_error(client.post(SEND, json=DOC_SEND), 403, "permission")
            assert_error(client.get(TEMPLATES), 403, "permission")
            assert_error(wa(client), 403, "permission")
            assert_error(client.get(WA_OPTIONS), 403, "permission")
    with server.client(STAFF, csrf=False) as client:
        assert_error(client.post(SEND, json=DOC_SEND), 403, "CSRF")
        assert_error(wa(client), 403, "CSRF")
    assert len(emails(server)) == 1
    assert server.sandbox.store.select("whatsapp_messages") == []


def test_whatsapp_options_and_send_recorded_on_the_job(server, admin):
    r = admin.get(WA_OPTIONS)
    assert r.status_code == 200, r.text
    first = r.json()["data"][0]
    assert (first["id"], first["name"], first["display_name"]) == (1, "job_created", "Job Created Notification")
    r = wa(admin, phone_number="447700000001")  # the reference example: no plus
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "WhatsApp message sent successfully" and body["message_id"].startswith("wamid.")
    assert body["data"] == {"message_id": body["message_id"], "status": "sent", "recipient": "+447700000001",
                            "template": "job_created", "job_id": 1001, "text": body["data"]["text"]}
    assert "JOB-001" in body["data"]["text"]
    store = server.sandbox.store
    [row] = store.select("whatsapp_messages")
    plain = store.reveal("whatsapp_messages", row)
    assert (plain["job_id"], plain["template_id"], plain["phone_number"]) == (1001, 1, "+447700000001")
    assert plain["message_id"] == body["message_id"] and plain["created_at"].startswith("2026-11-01T")
    for field in ENCRYPTED.get("whatsapp_messages", ()):  # phone_number, text: encrypted at rest
        assert row[field] != plain[field]
    with server.client(STAFF) as staff:
        assert wa(staff, template_id=2, phone_number="+44 7700 900123").json()["data"]["recipient"] == "+447700900123"


def test_whatsapp_send_bad_input_scoping_and_archived(server, admin):
    store = server.sandbox.store
    for change, word in (({"phone_number": "07700 900123"}, "E.164"), ({"phone_number": "+44abc"}, "phone_number"),
                         ({"job_id": None}, "job_id"), ({"template_id": 99}, "template_id"),
                         ({"template_id": "x"}, "template_id"), ({"job_id": 987654}, "Job not found")):
        r = wa(admin, **change)
        assert r.status_code in (400, 404) and word in r.json()["error"], r.text
    other = next(j for j in store.select("jobs", lambda r: r["org_id"] == 2))
    assert_error(wa(admin, job_id=other["ID"]), 404, "Job not found")
    archived = next(j for j in store.select("jobs", lambda r: r["status_id"] == 8 and r["org_id"] == 1))
    assert_error(wa(admin, job_id=archived["ID"]), 403, "archived")
    assert store.select("whatsapp_messages") == []
