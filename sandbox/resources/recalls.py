"""Recalls: ``POST /api/jobs/recall`` and ``POST /api/jobs/mark-recall-completed`` (seed 002).

A recall reopens a *completed* job — Complete, Closed or Invoiced (`RECALLABLE`) — with a reason: the
job moves to Recalled (status 6) with ``is_recall`` 1. It then ends either completed (back to
Complete, ``completed_at`` now) or cancelled (back to the status it had before the recall). Each step
writes an audit row to ``job_recalls``, a job commit, and the e-mail the e-mail guide names ("Job
recalled", "Recall completed", "Recall cancelled") to the job's contractor; marking also raises the
"Job Recalled" in-app notification. Mark-recall-completed has no CSRF token (seed 002) and answers its
documented error body, with ``message`` (and ``error``, for clients that read the usual envelope).
"""

from __future__ import annotations

from typing import Any

from .. import events, history
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, ok
from ..store import Row
from .jobs import load_job

COMPLETE, RECALLED, CLOSED, INVOICED = 5, 6, 7, 9
RECALLABLE = (COMPLETE, CLOSED, INVOICED)
NOT_RECALLED = "This job is not marked as a recall"


def is_recalled(job: Row) -> bool:
    return bool(job.get("is_recall")) or job["status_id"] == RECALLED


def _status(store, status_id: int) -> str:
    row = store.raw("statuses", status_id)
    return row["name"] if row else f"status {status_id}"


def _audit(call: Call, job: Row, action: str, reason: str | None, now: str) -> None:
    call.sandbox.store.insert("job_recalls", {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "action": action, "reason": reason,
        "user_id": call.principal.user_id, "created_at": now, "previous_status_id": job["status_id"],
    })


def _mail(call: Call, job: Row, template: str, subject: str, body: str, now: str) -> None:
    store = call.sandbox.store
    contractor = store.get("contractors", job.get("contractor_id"))
    if contractor and contractor.get("email"):
        events.record_email(store, now, org_id=job["org_id"], template=template, to=[contractor["email"]],
                            subject=f"{subject}: {job['job_ref']} - {job['job_title']}", body=body,
                            job_id=job["ID"], contractor_id=contractor["ID"])


def _mark(call: Call, job: Row, reason: str | None) -> dict[str, Any]:
    store = call.sandbox.store
    if reason is None or not reason.strip():
        raise bad_param("recall_reason", "required to mark a job as recalled")
    if is_recalled(job):
        raise ApiError(400, f"Job {job['job_ref']} is already marked as a recall")
    if job["status_id"] not in RECALLABLE:
        raise ApiError(400, f"Only a completed job (Complete, Closed or Invoiced) can be recalled: "
                            f"job {job['job_ref']} is {_status(store, job['status_id'])}")
    now = call.sandbox.clock.iso()
    _audit(call, job, "marked", reason, now)
    history.apply(store, now, job, {"status_id": RECALLED, "is_recall": 1, "recall_reason": reason},
                  user_id=call.principal.user_id, kind="recall", note="marked as recalled")
    _mail(call, job, "job_recalled", "Job recalled", f"Reason for the recall: {reason}", now)
    contractor_id = job.get("contractor_id")
    if contractor_id is not None:
        users = store.select("users", lambda u: u.get("contractor_id") == contractor_id)
        events.notify(store, now, org_id=job["org_id"], type="job_recalled", title="Job Recalled",
                      message=f"{job['job_ref']} has been recalled: {reason}", job_id=job["ID"],
                      user_id=users[0]["ID"] if users else None, contractor_id=contractor_id)
    return ok(message="Job marked as recalled successfully", job_id=job["ID"], job_ref=job["job_ref"],
              is_recall=1, action="marked as recalled")


def _finish(call: Call, job: Row, cancel: bool, reason: str | None) -> None:
    """Complete (back to Complete, completed now) or cancel (back to the status before the recall)."""
    store, now = call.sandbox.store, call.sandbox.clock.iso()
    changes: dict[str, Any] = {"is_recall": 0, "recall_reason": None}
    if cancel:
        marks = store.select("job_recalls", lambda r: r["job_id"] == job["ID"] and r["action"] == "marked")
        changes["status_id"] = marks[-1]["previous_status_id"] if marks else COMPLETE
    else:
        changes.update(status_id=COMPLETE, completed_at=now)
    _audit(call, job, "cancelled" if cancel else "completed", reason, now)
    history.apply(store, now, job, changes, user_id=call.principal.user_id, kind="recall",
                  note="recall cancelled" if cancel else "recall completed")
    if cancel:
        _mail(call, job, "recall_cancelled", "Recall cancelled", reason or "The recall was cancelled.", now)
    else:
        _mail(call, job, "recall_completed", "Recall completed", reason or "The recall works are complete.", now)


async def recall(call: Call) -> dict[str, Any]:
    p = call.params
    job = call.sandbox.store.reveal("jobs", load_job(call, p["job_uuid"], write=True))
    if p["is_recall"] == 1:
        return _mark(call, job, p.get("recall_reason"))
    if not is_recalled(job):
        raise ApiError(400, f"Job {job['job_ref']} is not marked as a recall, so there is no recall to "
                            f"{'cancel' if p['action_type'] == 'cancel' else 'complete'}")
    cancel = p["action_type"] == "cancel"
    _finish(call, job, cancel, p.get("recall_reason"))
    return ok(message=f"Recall {'cancelled' if cancel else 'completed'} successfully", job_id=job["ID"],
              job_ref=job["job_ref"], is_recall=0, action="recall cancelled" if cancel else "recall completed")


async def mark_completed(call: Call) -> dict[str, Any]:
    job = call.sandbox.store.reveal("jobs", load_job(call, call.params["job_uuid"], write=True))
    if not is_recalled(job):
        raise ApiError(400, NOT_RECALLED, message=NOT_RECALLED)
    _finish(call, job, False, None)
    return ok({"job_id": job["ID"], "job_title": job["job_title"]},
              message="Recall marked as completed successfully")


JOB_UUID = Param("job_uuid", "uuid", required=True)

ENDPOINTS = [
    Endpoint("POST", "/api/jobs/recall", recall, "api.jobs.recall.manage", csrf=True, params=(
        JOB_UUID,
        Param("recall_reason", max_length=2000, about="required when marking (is_recall=1)"),
        Param("is_recall", "integer", default=1, min=0, max=1, about="1 marks a recall, 0 completes/cancels it"),
        Param("action_type", enum=("standard", "cancel"), default="standard",
              about="with is_recall=0: standard completes the recall, cancel cancels it"),
    ), summary="Mark a completed job as recalled, or complete / cancel its recall"),
    Endpoint("POST", "/api/jobs/mark-recall-completed", mark_completed, "api.jobs.mark_recall_completed.manage",
             params=(JOB_UUID,), summary="Complete the recall of a recalled job (JSON body, no CSRF)"),
]
