"""Analytics, the users report and n8n workflows: ``/api/analytics/chat-messages``,
``/api/analytics/filtered-activity``, ``/api/analytics/ai-analysis``, ``/api/analytics/gemini-usage``,
``/api/reports/users`` and ``/api/n8n/workflows`` (analytics, reports and webhooks guides).

Everything is computed from the store, deterministically: the sandbox calls no AI. Where PropOps asks
Google Gemini (chat, AI analysis) the answer is a canned sentence filled with figures computed from the
caller's visible jobs, and each such call records a ``gemini_usage`` row {org_id, user_id, feature,
session_id, prompt_tokens, completion_tokens, created_at} (tokens ≈ characters / 4) that the usage endpoint
sums per day. The activity feed is derived from what the user did (sign-ins, jobs created, changes,
notes, files); the sandbox has no browser, so it records no page visits. n8n workflows are a fixed set
whose run history is derived from the organisation's job events (created, completed, recalled) and a daily
schedule.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from ..auth import STAFF
from ..clock import iso, parse_instant
from ..endpoints import Call, Endpoint, Param
from ..envelope import not_found, ok
from ..store import Row
from .jobs import FINISHED, _person

OPEN = frozenset({1, 2, 3, 4, 6})
PERIODS = {"7days": 7, "30days": 30, "90days": 90, "6months": 182, "1year": 365}
ANALYSES = ("quick_insights", "performance_deep_dive", "cost_optimization", "branch_comparison", "predictive_trends")
MAX_FEED = 100


def _jobs(call: Call, keep=lambda r: True) -> list[Row]:
    me = call.principal
    return call.sandbox.store.select("jobs", lambda r: me.sees_job(r) and keep(r), where=(("org_id", me.org_id),))


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _usage(call: Call, feature: str, prompt: str, answer: str, session_id: str | None = None) -> Row:
    return call.sandbox.store.insert("gemini_usage", {
        "ID": None, "uuid": None, "org_id": call.principal.org_id, "user_id": call.principal.user_id,
        "feature": feature, "session_id": session_id, "prompt_tokens": _tokens(prompt) + 50,
        "completion_tokens": _tokens(answer), "created_at": call.sandbox.clock.iso(),
    })


def _metrics(jobs: list[Row]) -> dict[str, Any]:
    n = len(jobs)
    spend = sum(float(j.get("job_total_budget") or 0) for j in jobs)
    cost = sum(float(j.get("contractor_budget") or 0) for j in jobs)
    recalls = sum(bool(j.get("is_recall")) for j in jobs)
    return {
        "jobs": n, "open_jobs": sum(j["status_id"] in OPEN for j in jobs),
        "completed_jobs": sum(j["status_id"] in FINISHED for j in jobs), "recalls": recalls,
        "recall_rate": round(100 * recalls / n, 1) if n else 0.0, "total_spend": round(spend, 2),
        "contractor_cost": round(cost, 2), "margin": round(spend - cost, 2),
        "average_job_value": round(spend / n, 2) if n else 0.0,
    }


def _branches(call: Call) -> dict[int, str]:
    return {b["ID"]: b["branch_name"] for b in call.sandbox.store.select("branches", where=(
        ("org_id", call.principal.org_id),))}


# -- AI chat (canned, computed answers) -----------------------------------------------------------------

def answer(call: Call, question: str) -> str:
    text, now = question.lower(), call.sandbox.clock.now()
    branches = _branches(call)
    branch = next((bid for bid, name in branches.items() if name.lower() in text), None)
    month = now.strftime("%Y-%m")
    this_month = "this month" in text
    jobs = _jobs(call, lambda r: (branch is None or r.get("branch_id") == branch)
                 and (not this_month or r["created_at"].startswith(month)))
    where = f" for {branches[branch]}" if branch else ""
    when = " this month" if this_month else ""
    m = _metrics(jobs)
    if "recall" in text:
        if not jobs:
            return f"There are no jobs{where}{when}, so there is no recall rate yet."
        return f"The recall rate{where}{when} is {m['recall_rate']}% ({m['recalls']} of {m['jobs']} jobs)."
    if any(w in text for w in ("spend", "cost", "revenue", "budget", "money")):
        return (f"Total job value{where}{when} is £{m['total_spend']:,.2f} across {m['jobs']} jobs "
                f"(contractor cost £{m['contractor_cost']:,.2f}, average job £{m['average_job_value']:,.2f}).")
    if "open" in text:
        return f"There are {m['open_jobs']} open jobs{where}{when}."
    if "complete" in text:
        return f"{m['completed_jobs']} jobs{where}{when} are complete, closed or invoiced."
    return (f"You can see {m['jobs']} jobs{where}{when}: {m['open_jobs']} open, {m['completed_jobs']} finished, "
            f"{m['recalls']} recalls. Ask me about recall rates, open jobs or spend, by branch or this month.")


async def chat(call: Call) -> dict[str, Any]:
    reply = answer(call, call.params["message"])
    _usage(call, "chat", call.params["message"], reply, call.params["session_id"])
    return ok(reply=reply, session_id=call.params["session_id"])


# -- activity feed --------------------------------------------------------------------------------------

def _activity(kind: str, details: dict[str, Any], at: str, title: str) -> Row:
    return {"activity_type": kind, "activity_details": json.dumps(details), "created_at": at, "ip_address": None,
            "parsed_details": details, "display_title": title}


async def filtered_activity(call: Call) -> dict[str, Any]:
    store, me, kind = call.sandbox.store, call.principal, call.params["type"]
    out: list[Row] = []
    if kind in ("all", "actions"):
        uid, org = me.user_id, ("org_id", me.org_id)
        for s in store.select("sessions", where=(("user_id", uid),)):
            out.append(_activity("login", {"action": "login"}, s["created_at"], "Signed in"))
        for j in store.select("jobs", where=(org, ("created_by", uid))):
            out.append(_activity("job_created", {"job_ref": j["job_ref"], "job_uuid": j["uuid"]}, j["created_at"],
                                 f"Created job {j['job_ref']}"))
        for table, verb, by in (("job_commits", "job_updated", "user_id"), ("case_notes", "case_note_added",
                                "created_by"), ("photos", "photo_uploaded", "uploaded_by"),
                                ("documents", "document_uploaded", "uploaded_by")):
            for r in store.select(table, where=(org, (by, uid))):  # the job's rows carry its org_id
                job = store.raw("jobs", r["job_id"])
                if job is None:
                    continue
                out.append(_activity(verb, {"job_ref": job["job_ref"], "uuid": r["uuid"]}, r["created_at"],
                                     f"{verb.replace('_', ' ').capitalize()}: {job['job_ref']}"))
    out.sort(key=lambda a: a["created_at"], reverse=True)
    out = out[:MAX_FEED]
    return ok(activities=out, count=len(out), filter=kind)


# -- AI analysis and usage ------------------------------------------------------------------------------

def _insights(kind: str, m: dict[str, Any], per_branch: list[Row], days: int) -> list[str]:
    lines = [f"{m['jobs']} jobs were logged in the last {days} days; {m['open_jobs']} are still open."]
    if kind in ("performance_deep_dive", "quick_insights"):
        lines.append(f"{m['completed_jobs']} jobs are finished and the recall rate is {m['recall_rate']}%.")
    if kind == "cost_optimization":
        lines.append(f"Contractor cost is £{m['contractor_cost']:,.2f} of £{m['total_spend']:,.2f} job value "
                     f"(margin £{m['margin']:,.2f}).")
    if kind == "branch_comparison" and per_branch:
        busiest = max(per_branch, key=lambda b: b["jobs"])
        lines.append(f"{busiest['branch_name']} is the busiest branch with {busiest['jobs']} jobs.")
    if kind == "predictive_trends":
        lines.append(f"At this rate about {round(m['jobs'] * 30 / days)} jobs can be expected in the next 30 days.")
    return lines


def _recommendations(m: dict[str, Any]) -> list[str]:
    out = []
    if m["recall_rate"] > 5:
        out.append("Recalls are above 5%: review the contractors with repeat visits.")
    if m["jobs"] and m["open_jobs"] / m["jobs"] > 0.5:
        out.append("More than half of the period's jobs are open: check contractor capacity and SLA targets.")
    return out or ["No action needed: the figures are within the usual ranges."]


async def ai_analysis(call: Call) -> dict[str, Any]:
    p, now = call.params, call.sandbox.clock.now()
    names = _branches(call)
    wanted = p.get("branch_ids") or []
    if any(b not in names for b in wanted):
        raise not_found("Branch")
    days = PERIODS[p["time_period"]]
    since = iso(now - dt.timedelta(days=days))
    jobs = _jobs(call, lambda r: r["created_at"] >= since and (not wanted or r.get("branch_id") in wanted))
    metrics = _metrics(jobs)
    by_branch: dict[int, list[Row]] = {}
    for j in jobs:
        by_branch.setdefault(j["branch_id"], []).append(j)
    per_branch = [{"branch_id": bid, "branch_name": names[bid], **_metrics(by_branch.get(bid, []))}
                  for bid in sorted(wanted or names)]
    kind = p["analysis_type"]
    insights = _insights(kind, metrics, per_branch, days)
    recommendations = _recommendations(metrics) if p["include_recommendations"] else []
    text = " ".join(insights + recommendations)
    usage = _usage(call, "ai_analysis", f"{kind} {p.get('focus_area')} {p.get('question') or ''}", text)
    return ok({
        "analysis_id": usage["uuid"], "analysis_type": kind, "focus_area": p.get("focus_area"),
        "time_period": p["time_period"], "period": {"from": since, "to": iso(now)}, "branch_ids": wanted,
        "metrics": metrics, "branches": per_branch, "insights": insights, "recommendations": recommendations,
        "summary": insights[0], "model": "sandbox-deterministic", "generated_at": iso(now),
        "tokens_used": usage["prompt_tokens"] + usage["completion_tokens"],
    })


async def gemini_usage(call: Call) -> dict[str, Any]:
    today = call.sandbox.clock.now().date()
    first = today - dt.timedelta(days=29)
    days = {(first + dt.timedelta(days=i)).isoformat(): {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
            for i in range(30)}
    features: dict[str, int] = {}
    for r in call.sandbox.store.select("gemini_usage", where=(("org_id", call.principal.org_id),)):
        day = days.get(r["created_at"][:10])
        if day is None:
            continue
        day["calls"] += 1
        day["prompt_tokens"] += r["prompt_tokens"]
        day["completion_tokens"] += r["completion_tokens"]
        features[r["feature"]] = features.get(r["feature"], 0) + 1
    rows = [{"date": d, **v, "total_tokens": v["prompt_tokens"] + v["completion_tokens"]} for d, v in days.items()]
    return ok({"from": first.isoformat(), "to": today.isoformat(), "days": rows,
               "total_calls": sum(r["calls"] for r in rows), "total_tokens": sum(r["total_tokens"] for r in rows),
               "calls_by_feature": features})


# -- users report ---------------------------------------------------------------------------------------

async def users_report(call: Call) -> dict[str, Any]:
    store, me, p = call.sandbox.store, call.principal, call.params
    staff = [store.plain("users", u["ID"]) for u in store.select(
        "users", lambda r: r["account_type_id"] == STAFF, where=(("org_id", me.org_id),))]
    if "user_id" in p:
        staff = [u for u in staff if u["ID"] == p["user_id"]]
        if not staff:
            raise not_found("User")
    org = ("org_id", me.org_id)
    search = (p.get("search") or "").lower()
    details = []
    for u in staff:
        uid, name = u["ID"], _person(store, "users", u["ID"])
        mine = store.select("jobs", where=(org, ("created_by", uid)))
        if search and search not in f"{name} {u['email']}".lower() and not any(
                search in f"{j['job_ref']} {j['job_title']}".lower() for j in mine):
            continue
        # Rows hanging off a job carry its org_id: each count is two index lookups, not a table scan.
        notes = store.select("case_notes", where=(org, ("created_by", uid)))
        files = [r for t in ("photos", "documents") for r in store.select(t, where=(org, ("uploaded_by", uid)))]
        accounts = store.select("users", where=(("created_by", uid),))
        branches = store.select("branches", where=(("created_by", uid),))
        stamps = [r["created_at"] for r in (*mine, *notes, *files, *accounts, *branches)]
        stamps += [u["last_activity"]] if u.get("last_activity") else []
        details.append({"user_id": uid, "uuid": u["uuid"], "name": name, "email": u["email"], "role": u["role"],
                        "jobs_created": len(mine), "case_notes_added": len(notes), "files_uploaded": len(files),
                        "accounts_created": len(accounts), "branches_created": len(branches),
                        "last_activity": max(stamps) if stamps else None})
    limit, page = p["limit"], p["page"]
    total = len(details)
    summary = {"total_staff": total, "total_jobs_created": sum(d["jobs_created"] for d in details),
               "total_case_notes": sum(d["case_notes_added"] for d in details),
               "total_files_uploaded": sum(d["files_uploaded"] for d in details)}
    return ok({"summary": summary, "details": details[(page - 1) * limit:page * limit],
               "pagination": {"page": page, "limit": limit, "total": total,
                              "total_pages": max(1, math.ceil(total / limit))}})


# -- n8n workflows --------------------------------------------------------------------------------------

WORKFLOWS = [
    {"id": "wf_001", "name": "New Job Notification", "active": True, "trigger": "webhook", "event": "job.created",
     "nodes": ["Webhook", "Format job", "Send e-mail"]},
    {"id": "wf_002", "name": "Job Completed Invoice Reminder", "active": True, "trigger": "webhook",
     "event": "job.completed", "nodes": ["Webhook", "Lookup invoice", "Send e-mail"]},
    {"id": "wf_003", "name": "Recall Alert", "active": True, "trigger": "webhook", "event": "job.recalled",
     "nodes": ["Webhook", "Filter recalls", "Slack"]},
    {"id": "wf_004", "name": "Daily SLA Digest", "active": True, "trigger": "schedule", "event": "cron 0 7 * * *",
     "nodes": ["Schedule", "Fetch breached jobs", "Send e-mail"]},
    {"id": "wf_005", "name": "Weekly Contractor Report", "active": False, "trigger": "schedule",
     "event": "cron 0 8 * * 1", "nodes": ["Schedule", "Build report", "Send e-mail"]},
]
_DIGEST_DAYS = 14


def _runs(call: Call, wf: dict[str, Any]) -> list[Row]:
    """The workflow's executions, newest first, derived from the organisation's job events."""
    now = call.sandbox.clock.now()
    stamp = iso(now)
    jobs = call.sandbox.store.select("jobs", where=(("org_id", call.principal.org_id),))
    if wf["id"] == "wf_001":
        events = [(j["created_at"], j["ID"]) for j in jobs]
    elif wf["id"] == "wf_002":
        events = [(j["completed_at"], j["ID"]) for j in jobs if j.get("completed_at")]
    elif wf["id"] == "wf_003":
        events = [(j["updated_at"], j["ID"]) for j in jobs if j.get("is_recall")]
    elif wf["id"] == "wf_004":
        seven = now.replace(hour=7, minute=0, second=0, microsecond=0)
        events = [(iso(seven - dt.timedelta(days=d)), int((seven - dt.timedelta(days=d)).strftime("%Y%m%d")))
                  for d in range(_DIGEST_DAYS)]
    else:
        events = []
    runs = []
    for at, key in sorted((e for e in events if e[0] <= stamp), reverse=True):
        ms = 800 + (key * 137) % 2400
        runs.append({"execution_id": f"exec_{wf['id'][3:]}_{key}", "workflow_id": wf["id"],
                     "status": "error" if key % 23 == 0 else "success", "mode": wf["trigger"], "started_at": at,
                     "finished_at": iso(parse_instant(at) + dt.timedelta(milliseconds=ms)), "duration_ms": ms})
    return runs


def _summary(call: Call, wf: dict[str, Any]) -> Row:
    runs = _runs(call, wf)
    return {"id": wf["id"], "name": wf["name"], "active": wf["active"], "trigger": wf["trigger"],
            "last_executed": runs[0]["started_at"] if runs else None, "execution_count": len(runs)}


def _workflow(call: Call) -> dict[str, Any]:
    wf = next((w for w in WORKFLOWS if w["id"] == call.params["workflow_id"]), None)
    if wf is None:
        raise not_found("Workflow")
    return wf


async def list_workflows(call: Call) -> dict[str, Any]:
    rows = [_summary(call, wf) for wf in WORKFLOWS]
    return ok(rows, count=len(rows))


async def get_workflow(call: Call) -> dict[str, Any]:
    wf = _workflow(call)
    nodes = [{"name": n, "type": "n8n-nodes-base." + re.sub(r"\W", "", n[0].lower() + n[1:]), "position": i}
             for i, n in enumerate(wf["nodes"])]
    return ok(_summary(call, wf) | {"event": wf["event"], "nodes": nodes})


async def executions(call: Call) -> dict[str, Any]:
    runs = _runs(call, _workflow(call))[:call.params["limit"]]
    return ok(runs, count=len(runs))


N8N, N8N_KEY = "/api/n8n/workflows", "page.settings.configuration"
WORKFLOW_ID = Param("workflow_id", required=True, max_length=50, about="e.g. wf_001")
ENDPOINTS = [
    Endpoint("POST", "/api/analytics/chat-messages", chat, None, csrf=True, params=(
        Param("session_id", required=True, max_length=100),
        Param("message", required=True, max_length=2000),
    ), summary="Ask the AI assistant (canned answers computed from your jobs)"),
    Endpoint("GET", "/api/analytics/filtered-activity", filtered_activity, "api.analytics.filtered_activity.view",
             params=(Param("type", default="all", enum=("all", "page_visits", "actions")),),
             summary="Your own activity feed"),
    Endpoint("POST", "/api/analytics/ai-analysis", ai_analysis, "api.analytics.ai_analysis", csrf=True, params=(
        Param("analysis_type", required=True, enum=ANALYSES),
        Param("focus_area", enum=("jobs", "branches", "financial", "operational")),
        Param("time_period", default="30days", enum=tuple(PERIODS)),
        Param("branch_ids", "int_list", about="limit to these branches; omit for all"),
        Param("include_recommendations", "boolean", default=True),
        Param("question", max_length=2000, about="free-text question"),
    ), summary="AI analysis (deterministic figures and canned insights)"),
    Endpoint("GET", "/api/analytics/gemini-usage", gemini_usage, "api.analytics.gemini_usage",
             summary="AI calls and tokens per day, last 30 days"),
    Endpoint("GET", "/api/reports/users", users_report, "page.reports.users", actions=("report",), default=True,
             params=(Param("page", "integer", default=1, min=1, max=1_000_000),
                     Param("limit", "integer", default=25, min=1, max=100),
                     Param("search", max_length=100), Param("user_id", "integer", min=1)),
             summary="Per-staff contribution report"),
    Endpoint("GET", N8N, list_workflows, N8N_KEY, actions=("list",), account_types=(STAFF,),
             summary="n8n workflows with their last run and run count"),
    Endpoint("GET", N8N, get_workflow, N8N_KEY, actions=("get",), account_types=(STAFF,), params=(WORKFLOW_ID,),
             summary="One n8n workflow with its nodes"),
    Endpoint("GET", N8N, executions, N8N_KEY, actions=("executions",), account_types=(STAFF,), params=(
        WORKFLOW_ID, Param("limit", "integer", default=20, min=1, max=100, about="max executions"),
    ), summary="An n8n workflow's run history, newest first"),
]
