"""Analytics over real HTTP: the AI chat's computed answers, the activity feed, AI analysis (figures from
the store, branch scoping, POST only), Gemini usage per day, the users report, n8n workflows; each role,
another organisation, bad input, CSRF."""

from __future__ import annotations

from conftest import AGENT, API, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

CHAT, ACTIVITY = "/api/analytics/chat-messages", "/api/analytics/filtered-activity"
ANALYSIS, USAGE = "/api/analytics/ai-analysis", "/api/analytics/gemini-usage"
USERS, N8N = "/api/reports/users", "/api/n8n/workflows"


def ask(client, message, session="session_001"):
    r = client.post(CHAT, json={"session_id": session, "message": message})
    assert r.status_code == 200, r.text
    return r.json()["reply"]


def test_chat_answers_from_the_callers_jobs_and_counts_usage(server, admin):
    store = server.sandbox.store
    b1 = [j for j in store.select("jobs", lambda r: r["org_id"] == 1 and r["branch_id"] == 1)]
    recalls = sum(bool(j["is_recall"]) for j in b1)
    rate = round(100 * recalls / len(b1), 1)
    assert ask(admin, "What is the recall rate for Branch_001?") == (
        f"The recall rate for Branch_001 is {rate}% ({recalls} of {len(b1)} jobs).")
    month = [j for j in b1 if j["created_at"].startswith("2026-11")]
    reply = ask(admin, "What is the recall rate for Branch_001 this month?")
    assert reply.startswith("The recall rate for Branch_001 this month is" if month else "There are no jobs")
    assert f"There are {sum(j['status_id'] in (1, 2, 3, 4, 6) for j in b1)} open jobs for Branch_001" in ask(
        admin, "how many open jobs in branch_001")
    with server.client(CONTRACTOR) as contractor:  # no key needed; the contractor sees only its jobs
        mine = store.select("jobs", lambda r: r["org_id"] == 1 and r["contractor_id"] == 20)
        assert ask(contractor, "hello").startswith(f"You can see {len(mine)} jobs")
    usage = store.select("gemini_usage")
    assert [(u["feature"], u["session_id"], u["org_id"]) for u in usage] == [("chat", "session_001", 1)] * 4
    assert_error(admin.post(CHAT, json={"session_id": "s"}), 400, "message")
    assert_error(admin.post(CHAT, json={"message": "x" * 2001, "session_id": "s"}), 400, "message")
    with server.client(AGENT, csrf=False) as client:
        assert_error(client.post(CHAT, json={"session_id": "s", "message": "hi"}), 403, "CSRF")
    assert len(store.select("gemini_usage")) == 4


def test_filtered_activity_lists_every_kind_of_the_callers_work(server):
    store = server.sandbox.store
    with server.client(STAFF) as staff:  # user 2: fewer than MAX_FEED (100) entries in all
        server.sandbox.clock.advance(60)
        r = staff.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "quote_no": "Q-1"})
        assert r.status_code == 200, r.text
        feed = staff.get(ACTIVITY).json()["activities"]
    assert feed[0]["activity_type"] == "job_updated" and feed[0]["parsed_details"]["job_ref"] == "JOB-001"
    counts: dict[str, int] = {}
    for a in feed:
        counts[a["activity_type"]] = counts.get(a["activity_type"], 0) + 1
    mine = lambda table, field: len(store.select(table, lambda r: r["org_id"] == 1 and r[field] == 2))  # noqa: E731
    assert counts == {"login": 1, "job_updated": 1, "job_created": mine("jobs", "created_by"),
                      "case_note_added": mine("case_notes", "created_by"),
                      "photo_uploaded": mine("photos", "uploaded_by"),
                      "document_uploaded": mine("documents", "uploaded_by")}
    assert min(counts.values()) >= 1


def test_filtered_activity_is_the_callers_own(server):
    store = server.sandbox.store
    with server.client(STAFF) as staff:
        r = staff.get(ACTIVITY)
        assert r.status_code == 200, r.text
        assert_envelope_headers(r)
        body = r.json()
        assert body["filter"] == "all" and body["count"] == len(body["activities"]) > 1
        created = {j["job_ref"] for j in store.select("jobs", lambda r: r["created_by"] == 2)}
        shown = {a["parsed_details"]["job_ref"] for a in body["activities"] if a["activity_type"] == "job_created"}
        assert shown and shown <= created
        first = body["activities"][0]
        assert first["activity_type"] == "login" and first["display_title"] == "Signed in"
        assert [a["created_at"] for a in body["activities"]] == sorted(
            (a["created_at"] for a in body["activities"]), reverse=True)
        assert staff.get(ACTIVITY, params={"type": "page_visits"}).json()["activities"] == []
        assert_error(staff.get(ACTIVITY, params={"type": "everything"}), 400, "type")
    with server.client(OTHER_ADMIN) as other:
        feed = other.get(ACTIVITY).json()["activities"]
        refs = {a["parsed_details"].get("job_ref") for a in feed} - {None}
        assert refs and refs <= {j["job_ref"] for j in store.select("jobs", lambda r: r["org_id"] == 2)}
    for email, user_id in ((AGENT, 3), (CONTRACTOR, 4)):  # every role may read its own feed, and only its own
        with server.client(email) as client:
            feed = client.get(ACTIVITY).json()["activities"]
            assert feed and feed[0]["activity_type"] == "login"
            mine = {j["job_ref"] for j in store.select("jobs", lambda r, u=user_id: r["created_by"] == u)}
            assert {a["parsed_details"]["job_ref"] for a in feed if a["activity_type"] == "job_created"} <= mine


def test_ai_analysis_computes_figures_and_is_post_only(server, admin):
    store = server.sandbox.store
    r = admin.post(ANALYSIS, json={"analysis_type": "branch_comparison", "branch_ids": [1, 2], "time_period": "90days"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    since = data["period"]["from"]
    assert since == "2026-08-03T09:00:00Z"
    window = store.select("jobs", lambda j: j["org_id"] == 1 and j["branch_id"] in (1, 2) and j["created_at"] >= since)
    assert data["metrics"]["jobs"] == len(window)
    assert data["metrics"]["total_spend"] == round(sum(j["job_total_budget"] for j in window), 2)
    assert [b["branch_id"] for b in data["branches"]] == [1, 2]
    assert sum(b["jobs"] for b in data["branches"]) == len(window)
    assert "busiest branch" in data["insights"][1] and data["recommendations"]
    assert data["model"] == "sandbox-deterministic"
    assert [u["feature"] for u in store.select("gemini_usage")] == ["ai_analysis"]
    quick = admin.post(ANALYSIS, json={"analysis_type": "quick_insights", "include_recommendations": False}).json()
    assert quick["data"]["time_period"] == "30days" and quick["data"]["recommendations"] == []
    assert admin.get(ANALYSIS).status_code == 405
    for body, word in (({"analysis_type": "vibes"}, "analysis_type"), ({}, "analysis_type"),
                       ({"analysis_type": "quick_insights", "time_period": "2days"}, "time_period"),
                       ({"analysis_type": "quick_insights", "branch_ids": ["a"]}, "branch_ids")):
        assert_error(admin.post(ANALYSIS, json=body), 400, word)
    assert_error(admin.post(ANALYSIS, json={"analysis_type": "quick_insights", "branch_ids": [987654]}), 404, "Branch")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post(ANALYSIS, json={"analysis_type": "quick_insights", "branch_ids": [1]}), 404, "Branch")
    with server.client(API, csrf=False) as api:
        assert_error(api.post(ANALYSIS, json={"analysis_type": "quick_insights"}), 403, "CSRF")
    for email in (STAFF, AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert_error(client.post(ANALYSIS, json={"analysis_type": "quick_insights"}), 403, "permission")
    assert len(store.select("gemini_usage")) == 2


def test_gemini_usage_sums_calls_per_day_for_the_organisation(server, admin):
    ask(admin, "hello")
    server.sandbox.clock.advance(86400)
    ask(admin, "recall rate?")
    with server.client(OTHER_ADMIN) as other:
        ask(other, "hello")
        theirs = other.get(USAGE).json()["data"]
        assert theirs["total_calls"] == 1
    r = admin.get(USAGE)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data["days"]) == 30 and (data["from"], data["to"]) == ("2026-10-04", "2026-11-02")
    assert [(d["date"], d["calls"]) for d in data["days"][-2:]] == [("2026-11-01", 1), ("2026-11-02", 1)]
    assert data["total_calls"] == 2 and data["calls_by_feature"] == {"chat": 2}
    assert data["total_tokens"] == sum(d["prompt_tokens"] + d["completion_tokens"] for d in data["days"]) > 0
    with server.client(STAFF) as staff:
        assert_error(staff.get(USAGE), 403, "permission")


def test_users_report_counts_each_staff_members_work(server, admin):
    store = server.sandbox.store
    r = admin.get(USERS)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    staff = [u for u in store.select("users") if u["org_id"] == 1 and u["account_type_id"] == 1]
    assert data["summary"]["total_staff"] == len(staff) == data["pagination"]["total"]
    assert data["summary"]["total_jobs_created"] == sum(d["jobs_created"] for d in data["details"])
    row = next(d for d in data["details"] if d["user_id"] == 2)
    assert row["name"] == "Sandbox Staff" and row["jobs_created"] == len(store.select(
        "jobs", lambda j: j["created_by"] == 2 and j["org_id"] == 1))
    assert row["case_notes_added"] == len(store.select("case_notes", lambda n: n["created_by"] == 2))
    assert row["files_uploaded"] == sum(len(store.select(t, lambda f: f["uploaded_by"] == 2))
                                        for t in ("photos", "documents")) > 0
    assert data["summary"]["total_files_uploaded"] == sum(d["files_uploaded"] for d in data["details"])
    one = admin.get(USERS, params={"user_id": 2}).json()["data"]
    assert [d["user_id"] for d in one["details"]] == [2]
    page = admin.get(USERS, params={"limit": 2, "page": 2}).json()["data"]
    assert [d["user_id"] for d in page["details"]] == [d["user_id"] for d in data["details"]][2:4]
    assert [d["name"] for d in admin.get(USERS, params={"search": "SOPHIE"}).json()["data"]["details"]] == [
        "Sophie Lewis"]
    assert_error(admin.get(USERS, params={"user_id": 6}), 404, "User not found")  # another organisation's
    assert_error(admin.get(USERS, params={"limit": 101}), 400, "limit")
    assert_error(admin.get(USERS, params={"page": 0}), 400, "page")
    assert_error(admin.get(USERS, params={"page": 10**21}), 400, "page")
    with server.client(STAFF) as staff_client:
        assert staff_client.get(USERS).status_code == 200
    with server.client(AGENT) as agent:
        assert_error(agent.get(USERS), 403, "permission")


def test_n8n_workflows_list_get_and_executions(server, admin):
    store = server.sandbox.store
    listed = admin.get(N8N, params={"action": "list"}).json()["data"]
    first = listed[0]
    assert (first["id"], first["name"], first["active"], first["trigger"]) == (
        "wf_001", "New Job Notification", True, "webhook")
    jobs = store.select("jobs", lambda r: r["org_id"] == 1)
    assert first["execution_count"] == len(jobs) and first["last_executed"] == max(j["created_at"] for j in jobs)
    one = admin.get(N8N, params={"action": "get", "workflow_id": "wf_001"}).json()["data"]
    assert one["nodes"][0]["name"] == "Webhook" and one["event"] == "job.created"
    runs = admin.get(N8N, params={"action": "executions", "workflow_id": "wf_001", "limit": 10}).json()["data"]
    assert len(runs) == 10 and runs[0]["started_at"] == first["last_executed"]
    assert all(r["finished_at"] >= r["started_at"] and r["duration_ms"] > 0 for r in runs)
    assert_error(admin.get(N8N, params={"action": "get"}), 400, "workflow_id")
    assert_error(admin.get(N8N, params={"action": "executions"}), 400, "workflow_id")
    assert_error(admin.get(N8N, params={"action": "get", "workflow_id": "wf_999"}), 404, "Workflow not found")
    assert_error(admin.get(N8N, params={"action": "executions", "workflow_id": "wf_999"}), 404, "Workflow not found")
    assert_error(admin.get(N8N, params={"action": "executions", "workflow_id": "wf_001", "limit": 0}), 400, "limit")
    with server.client(OTHER_ADMIN) as other:
        theirs = other.get(N8N, params={"action": "list"}).json()["data"][0]
        assert theirs["execution_count"] == len(store.select("jobs", lambda r: r["org_id"] == 2))
    for email in (STAFF, AGENT, CONTRACTOR, API):
        with server.client(email) as client:
            assert_error(client.get(N8N, params={"action": "list"}), 403, "permission")
