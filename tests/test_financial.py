"""Financial over real HTTP: the invoices list (documented example fields, filters, paging, scoping),
update_payment (one tracking field, history, archived 403, bad input, CSRF), the service catalogue (list
active only, get, missing), and the financial report (rows, summary, per-branch totals, filters)."""

from __future__ import annotations

from conftest import AGENT, API, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

INVOICES, PRICING, REPORT = "/api/financial/invoices", "/api/services/pricing", "/api/reports/financial"
FIELDS = ("payment_received_client", "payment_sent_contractor", "agent_commission_paid", "inhouse_commission_paid")


def invoices(client, **params) -> dict:
    r = client.get(INVOICES, params={"action": "get_invoices", "limit": 200, **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["invoices"])
    return body


def pay(client, job_id=1001, field="payment_received_client", value=250, **extra):
    return client.post(INVOICES, json={"action": "update_payment", "job_id": job_id, "field": field,
                                       "value": value, **extra})


def org_jobs(server, org=1, keep=lambda r: True):
    return server.sandbox.store.select("jobs", lambda r: r["org_id"] == org and keep(r))


def test_invoices_list_the_documented_fields_of_jobs_with_financial_activity(server, admin):
    body = invoices(admin)
    expected = [j["ID"] for j in org_jobs(server, keep=lambda r: bool(r.get("invoice_no")))]
    assert [i["id"] for i in body["invoices"]] == expected[:200] and body["total"] == len(expected)
    first = body["invoices"][0]
    assert {k: first[k] for k in ("id", "uuid", "job_ref", "invoice_no", "job_title", "contractor_budget")} == {
        "id": 1001, "uuid": JOB_1001, "job_ref": "JOB-001", "invoice_no": "INV-001",
        "job_title": "Boiler Service - Unit 001", "contractor_budget": 180.0}
    assert first["contractor_name"].startswith("Contractor_001") and first["status_name"] == "Open"
    assert {f: first[f] for f in FIELDS} == dict.fromkeys(FIELDS, 0.0)
    assert first["payment_status_name"] == "Awaiting Payment" and first["total_amount"] == 216.0
    # Filters and paging.
    paid = invoices(admin, payment_status_id=4)["invoices"]
    assert paid and [i["id"] for i in paid] == [j["ID"] for j in org_jobs(
        server, keep=lambda r: r.get("invoice_no") and r["payment_status_id"] == 4)]
    invoiced = invoices(admin, job_status_id=9, payment_status_id=3)
    assert invoiced["total"] and [i["id"] for i in invoiced["invoices"]] == [j["ID"] for j in org_jobs(
        server, keep=lambda r: r.get("invoice_no") and r["status_id"] == 9 and r["payment_status_id"] == 3)]
    page = invoices(admin, limit=2, offset=1)
    assert [i["id"] for i in page["invoices"]] == expected[1:3] and page["total"] == len(expected)


def test_update_payment_sets_one_field_shows_in_the_list_and_the_job_history(server, admin):
    job = next(j for j in org_jobs(server, keep=lambda r: not r.get("invoice_no") and r["status_id"] != 8))
    assert job["ID"] not in {i["id"] for i in invoices(admin)["invoices"]}
    r = pay(admin, job_id=job["ID"], field="agent_commission_paid", value=25.5)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["message"] == "Operation completed successfully"
    listed = next(i for i in invoices(admin)["invoices"] if i["id"] == job["ID"])  # now has activity
    assert listed["agent_commission_paid"] == 25.5
    assert [listed[f] for f in FIELDS if f != "agent_commission_paid"] == [0.0, 0.0, 0.0]
    assert server.sandbox.store.raw("jobs", job["ID"])["agent_commission_paid"] == 25.5
    h = admin.get("/api/jobs/manage", params={"action": "list_commits", "uuid": job["uuid"]})
    assert h.status_code == 200, h.text  # the change shows in the job's history
    assert "agent_commission_paid" in str(h.json()["data"])
    commits = server.sandbox.store.select("job_commits", lambda r: r["job_id"] == job["ID"])
    assert [c["kind"] for c in commits] == ["payment"]


def test_update_payment_bad_input_archived_other_org_and_csrf(server, admin):
    before = server.sandbox.store.raw("jobs", 1001)
    for fields, name in (({"field": "tip"}, "field"), ({"value": -1}, "value"), ({"value": "lots"}, "value"),
                         ({"job_id": "x"}, "job_id"), ({"field": None}, "field")):
        assert_error(pay(admin, **fields), 400, name)
    assert_error(pay(admin, job_id=987654), 404, "Job not found")
    other = org_jobs(server, org=2)[0]
    assert_error(pay(admin, job_id=other["ID"]), 404, "Job not found")
    archived = next(j for j in org_jobs(server, keep=lambda r: r["status_id"] == 8))
    assert_error(pay(admin, job_id=archived["ID"]), 403, "archived")
    with server.client(STAFF, csrf=False) as client:
        assert_error(pay(client), 403, "CSRF")
    assert server.sandbox.store.raw("jobs", 1001) == before
    assert server.sandbox.store.select("job_commits") == []


def test_roles_and_organisations(server):
    with server.client(STAFF) as staff:
        assert pay(staff, value=100).status_code == 200
        assert next(i for i in invoices(staff)["invoices"] if i["id"] == 1001)["payment_received_client"] == 100
    with server.client(API) as api:
        assert invoices(api)["total"] > 0
    for email in (AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert_error(client.get(INVOICES, params={"action": "get_invoices"}), 403, "permission")
            assert_error(pay(client), 403, "permission")
            assert_error(client.get(REPORT), 403, "permission")
    with server.client(OTHER_ADMIN) as other:
        theirs = {i["id"] for i in invoices(other)["invoices"]}
        assert theirs and theirs <= {j["ID"] for j in org_jobs(server, org=2)}
        report = other.get(REPORT, params={"limit": 200}).json()
        assert report["total"] == len(org_jobs(server, org=2)) and "JOB-001" not in str(report)
        assert_error(other.get(REPORT, params={"branch_id": 1}), 404, "Branch not found")


def test_service_pricing_lists_active_services_and_gets_one(admin, anon):
    r = admin.get(PRICING, params={"action": "list"})
    assert r.status_code == 200, r.text
    body = r.json()
    names = [s["name"] for s in body["data"]]
    assert names[:2] == ["PropOps Core", "AI Analysis Add-on"] and "Legacy SMS Bundle" not in names
    assert body["count"] == len(names) == body["total"] and all(s["is_active"] for s in body["data"])
    core = body["data"][0]
    assert core["uuid"] == "srv_550e8400-e29b-41d4-a716-001" and core["price"] == 99.0 and core["currency"] == "GBP"
    gas = admin.get(PRICING, params={"action": "list", "category": "Gas & Heating"}).json()["data"]
    assert gas and {(s["service_category"], s["vat_rate"]) for s in gas} == {("Gas & Heating", 20.0)}
    assert gas[0]["service_name"] == "Boiler Service" and gas[0]["unit_price"] == 85.0
    one = admin.get(PRICING, params={"action": "get", "service_id": core["uuid"]})
    assert one.status_code == 200 and one.json()["data"]["features"][0] == "Unlimited jobs"
    assert_error(admin.get(PRICING, params={"action": "get"}), 400, "service_id")
    assert_error(admin.get(PRICING, params={"action": "get", "service_id": "srv_nope"}), 404, "Service not found")
    assert_error(admin.get(PRICING, params={"action": "list", "limit": 0}), 400, "limit")
    assert_error(anon.get(PRICING, params={"action": "list"}), 401)


def test_financial_report_rows_summary_and_branches(server, admin):
    store = server.sandbox.store
    assert pay(admin, value=100).status_code == 200  # job 1001: £100 of £250 received
    r = admin.get(REPORT, params={"limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    jobs = org_jobs(server)
    assert body["total"] == len(jobs) and body["count"] == 5 and body["data"][0]["job_ref"] == "JOB-001"
    row = body["data"][0]
    assert row["invoice_no"] == "INV-001" and row["contractor_budget"] == 180.0 and row["payment_received"] is False
    revenue = round(sum(j["job_total_budget"] for j in jobs), 2)
    summary = body["summary"]
    assert summary["total_jobs"] == len(jobs) and summary["total_revenue"] == revenue
    assert summary["average_job_value"] == round(revenue / len(jobs), 2)
    unpaid = [j for j in jobs if j["payment_status_id"] not in (4, 5)]
    assert summary["outstanding_payments"] == round(sum(j["job_total_budget"] for j in unpaid) - 100, 2)
    assert sum(b["total_jobs"] for b in body["by_branch"]) == len(jobs)
    assert body["by_branch"][0]["branch_name"] == store.raw("branches", 1)["branch_name"]
    # Filters: branch, dates (creation date), search.
    b1 = admin.get(REPORT, params={"branch_id": 1, "limit": 200}).json()
    assert b1["total"] == sum(j["branch_id"] == 1 for j in jobs) and {d["branch_id"] for d in b1["data"]} == {1}
    window = admin.get(REPORT, params={"date_from": "2026-10-01", "date_to": "2026-10-31", "limit": 200}).json()
    assert window["total"] == sum("2026-10-01" <= j["created_at"][:10] <= "2026-10-31" for j in jobs)
    assert admin.get(REPORT, params={"search": "inv-001"}).json()["total"] == 1
    assert_error(admin.get(REPORT, params={"date_from": "2026-11-01", "date_to": "2026-10-01"}), 400, "date_to")
    assert_error(admin.get(REPORT, params={"date_from": "01/10/2026"}), 400, "date_from")
    assert_error(admin.get(REPORT, params={"branch_id": 987654}), 404, "Branch not found")
