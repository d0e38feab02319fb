"""What the sandbox would have sent: e-mails and in-app notifications, recorded instead of delivered.

PropOps e-mails parties when notes are sent by e-mail, jobs are assigned, recalled and so on; the sandbox
keeps each as a row (`emails`, `notifications`), so tests and the control plane can see what would have
gone out and to whom. E-mail recipients and bodies are personal data, stored encrypted.
"""

from __future__ import annotations

from typing import Any

from .store import Row, Store


def record_email(store: Store, now: str, *, org_id: int, template: str, to: list[str], subject: str,
                 body: str = "", job_id: int | None = None, **extra: Any) -> Row:
    return store.insert("emails", {
        "ID": None, "uuid": None, "org_id": org_id, "job_id": job_id, "template": template,
        "to": ", ".join(to), "subject": subject, "body": body, "status": "sent", "created_at": now, **extra,
    })


def notify(store: Store, now: str, *, org_id: int, type: str, title: str, message: str,
           job_id: int | None = None, user_id: int | None = None, contractor_id: int | None = None,
           **extra: Any) -> Row:
    return store.insert("notifications", {
        "ID": None, "uuid": None, "org_id": org_id, "user_id": user_id, "contractor_id": contractor_id,
        "job_id": job_id, "type": type, "title": title, "message": message, "is_read": False,
        "resource_type": "job" if job_id else None, "resource_id": job_id, "created_at": now, **extra,
    })

