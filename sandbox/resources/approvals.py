"""The approval gate: ``POST /api/jobs/approval-gate`` (seed 002).

A job is at the gate while its status is Awaiting Approval (4). The docs do not say where the gate
leads, so the sandbox reads it as the sign-off before works go ahead: ``approve`` moves the job on to
In Progress (3) when it has a contractor, or back to Open (1) to await one when it has none (Assigned
means "contractor selected"); ``reject`` keeps it at the gate. Either way the decision, with its notes,
is recorded in ``job_approvals`` and the job's updated_at moves. A job not at the gate answers 400,
an archived job 403.
"""

from __future__ import annotations

from typing import Any

from .. import history
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, ok
from .jobs import MANAGE, load_job

OPEN, IN_PROGRESS, AWAITING_APPROVAL = 1, 3, 4


def _status(store, status_id: int) -> str:
    row = store.raw("statuses", status_id)
    return row["name"] if row else f"status {status_id}"


async def gate(call: Call) -> dict[str, Any]:
    store, p, me = call.sandbox.store, call.params, call.principal
    job = store.reveal("jobs", load_job(call, p["job_uuid"], write=True))
    if job["status_id"] != AWAITING_APPROVAL:
        raise ApiError(400, f"Job {job['job_ref']} is not at an approval gate: its status is "
                            f"{_status(store, job['status_id'])}, not {_status(store, AWAITING_APPROVAL)}")
    now, approve = call.sandbox.clock.iso(), p["decision"] == "approve"
    after = (IN_PROGRESS if job.get("contractor_id") is not None else OPEN) if approve else AWAITING_APPROVAL
    store.insert("job_approvals", {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "decision": p["decision"],
        "notes": p.get("notes"), "user_id": me.user_id, "created_at": now,
        "from_status_id": AWAITING_APPROVAL, "to_status_id": after,
    })
    history.apply(store, now, job, {"status_id": after}, user_id=me.user_id, kind="approval",
                  note=f"approval gate: {p['decision']}" + (f" ({p['notes']})" if p.get("notes") else ""))
    data = {"job_id": job["ID"], "job_ref": job["job_ref"], "decision": p["decision"], "status_id": after,
            "status_name": _status(store, after)}
    if approve:
        return ok(data, message="Job approved and progressed to next status")
    return ok(data, message="Job rejected at the approval gate; it stays awaiting approval")


ENDPOINTS = [
    Endpoint("POST", "/api/jobs/approval-gate", gate, MANAGE, csrf=True, params=(
        Param("job_uuid", "uuid", required=True),
        Param("decision", enum=("approve", "reject"), required=True),
        Param("notes", max_length=2000, about="optional notes on the decision"),
    ), summary="Approve (progress the job) or reject (keep it at the gate) a job awaiting approval"),
]
