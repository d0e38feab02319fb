"""The demo dashboard: ``GET /_sandbox/`` serves one self-contained page, ``GET /_sandbox/stats`` its counts.

The page (``dashboard.html`` beside this module, shipped as package data and read once at import) has
inline CSS and JS only and drives the control plane from the browser: counts, the scenario switcher, the
clock, the live request journal, reset, the demo accounts with their tokens and a jobs board it reads
through the PropOps API with a staff login of its own. Its own API requests carry ``via=dashboard`` (in
the query, or the login body) so the journal panel can tell them apart and hide them.

Both routes sit in the control plane's route table, behind the same admin-key guard as the rest.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .runtime import Sandbox

PAGE = resources.files(__package__ or "sandbox").joinpath("dashboard.html").read_text(encoding="utf-8")

# The page may talk to its own origin only: no external script, style, image, font or frame can load.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Counted per organisation and in total; jobs are also counted per status.
RESOURCES = ("jobs", "contractors", "agents", "branches", "tenants", "users")


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE, headers=HEADERS)


def collect(sandbox: Sandbox) -> dict[str, Any]:
    """Counts per resource (in total and per organisation), jobs per status, and where the journal stands."""
    store = sandbox.store
    statuses = [{"id": r["ID"], "name": r["name"]} for r in store.select("statuses")]
    orgs = [{"id": r["ID"], "name": r["name"]} for r in store.select("organisations")]
    per_org = {table: Counter(r.get("org_id") for r in store.select(table)) for table in RESOURCES}
    jobs = store.select("jobs")
    by_status = Counter(r["status_id"] for r in jobs)
    by_org_status = Counter((r.get("org_id"), r["status_id"]) for r in jobs)
    entries = sandbox.journal.entries
    return {
        "resources": {table: sum(per_org[table].values()) for table in RESOURCES},
        "statuses": statuses,
        "jobs_by_status": [{**s, "count": by_status[s["id"]]} for s in statuses],
        "organisations": [
            {**org, "resources": {table: per_org[table][org["id"]] for table in RESOURCES},
             "jobs_by_status": [{**s, "count": by_org_status[(org["id"], s["id"])]} for s in statuses]}
            for org in orgs
        ],
        "journal": {
            "count": len(entries),
            "first_id": entries[0]["id"] if entries else None,
            "last_id": entries[-1]["id"] if entries else None,
        },
    }


def stats(sandbox: Sandbox):
    """The ``GET /_sandbox/stats`` handler for this sandbox."""

    async def handler(request: Request) -> JSONResponse:
        return JSONResponse({"success": True, "data": collect(sandbox)})

    return handler
