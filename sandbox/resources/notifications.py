"""Notifications: each user's in-app notifications, system notices, organisation notices, web push.

- ``GET /api/system/notifications?action=list|get`` and ``POST /api/system/notifications`` (no action,
  ``notification_id``): the caller's own notifications (rows `sandbox.events.notify` records when jobs are
  assigned, recalled…), newest first, with ``unread_count`` and ``total`` beside ``data``; marking one read.
  Every signed-in user, own notifications only, no admin override (notifications guide): someone else's
  answers 404 like a missing one.
- ``GET /api/system/notifications`` without an action: the organisation's system-wide notices
  (``active_only``, default true); ``POST`` ``create|dismiss|delete`` manage them (dismiss = inactive,
  delete = gone), with ``api.system.notifications.manage`` (the reference page's key).
- ``GET|POST /api/notices``: announcements aimed at account types, optionally shown on the login screen,
  inactive once ``expires_at`` has passed (notices guide).
- ``POST /api/system/web-push-subscriptions``: the caller's browser push subscription (one per endpoint URL).
"""

from __future__ import annotations

import re
from typing import Any

from ..clock import iso, parse_instant
from ..endpoints import Call, Endpoint, Param
from ..envelope import FORBIDDEN, ApiError, bad_param, listing, not_found, ok
from ..store import Row
from ._generic import page
from .jobs import _person

PATH = "/api/system/notifications"
NOTICES = "/api/notices"
MANAGE = "api.system.notifications.manage"
NOTICES_KEY = "api.system.notices.manage"
ACCOUNT_TYPES = range(1, 6)  # 1 Staff, 2 Agent, 3 Landlord, 4 Tenant, 5 Contractor
_URL = re.compile(r"https://[^\s/]+(/\S*)?")


# -- the caller's own notifications ----------------------------------------------------------------

def _mine(call: Call):
    me = call.principal

    def keep(r: Row) -> bool:
        if r.get("org_id") != me.org_id:
            return False
        if r.get("user_id") is not None:
            return r["user_id"] == me.user_id
        # Sent to a contractor company rather than a login: each of its users sees it.
        return me.contractor_id is not None and r.get("contractor_id") == me.contractor_id

    return keep


def _own(call: Call, notification_id: int) -> Row:
    row = call.sandbox.store.raw("notifications", notification_id)
    if row is None or not _mine(call)(row):
        raise not_found("Notification")
    return row


def _notification(call: Call, raw: Row, full: bool = False) -> Row:
    store = call.sandbox.store
    row = store.reveal("notifications", raw)
    job = store.raw("jobs", row["job_id"]) if row.get("job_id") else None
    out = {
        "id": row["ID"], "type": row["type"], "title": row["title"], "message": row["message"],
        "resource_type": row.get("resource_type"), "resource_id": job["uuid"] if job else None,
        "is_read": bool(row.get("is_read")), "created_at": row["created_at"],
    }
    if full:
        out |= {"read_at": row.get("read_at"), "job_ref": job["job_ref"] if job else None}
    return out


def _mine_rows(call: Call) -> list[Row]:
    """The rows `_mine` accepts, picked from the table's field indexes (it grows with every assignment)."""
    store, me = call.sandbox.store, call.principal
    org = ("org_id", me.org_id)
    rows = store.select("notifications", where=(org, ("user_id", me.user_id)))
    if me.contractor_id is not None:
        rows += store.select("notifications", where=(org, ("user_id", None), ("contractor_id", me.contractor_id)))
    return rows


async def list_mine(call: Call) -> dict[str, Any]:
    p = call.params
    rows = _mine_rows(call)
    unread = sum(1 for r in rows if not r.get("is_read"))
    if p.get("unread_only"):
        rows = [r for r in rows if not r.get("is_read")]
    rows.sort(key=lambda r: (r["created_at"], r["ID"]), reverse=True)
    return listing([_notification(call, r) for r in page(call, rows)], len(rows), unread_count=unread)


async def get_mine(call: Call) -> dict[str, Any]:
    return ok(_notification(call, _own(call, call.params["notification_id"]), full=True))


async def mark_read(call: Call) -> dict[str, Any]:
    row = _own(call, call.params["notification_id"])
    if not row.get("is_read"):
        call.sandbox.store.update("notifications", row["ID"], {"is_read": True, "read_at": call.sandbox.clock.iso()})
    return ok(message="Notification marked as read", notification_id=row["ID"], is_read=True)


# -- system notices --------------------------------------------------------------------------------

def _system_notice(row: Row) -> Row:
    return {"ID": row["ID"], "title": row["title"], "body": row["body"], "type": row["type"],
            "is_active": row["is_active"], "created_at": row["created_at"]}


async def list_system(call: Call) -> dict[str, Any]:
    active_only = call.params["active_only"]
    rows = call.sandbox.store.select("system_notices", lambda r: r["is_active"] or not active_only,
                                     where=(("org_id", call.principal.org_id),))
    rows.sort(key=lambda r: (r["created_at"], r["ID"]), reverse=True)
    return listing([_system_notice(r) for r in rows], len(rows))


def _manager(call: Call) -> None:
    if not call.principal.can(MANAGE):
        raise ApiError(403, FORBIDDEN)


def _system_row(call: Call) -> Row:
    row = call.sandbox.store.raw("system_notices", call.params["notification_id"])
    if row is None or row["org_id"] != call.principal.org_id:
        raise not_found("Notification")
    return row


def _not_blank(call: Call, *names: str) -> None:
    for name in names:
        if not call.params[name].strip():
            raise bad_param(name, "must not be blank")


async def create_system(call: Call) -> dict[str, Any]:
    _manager(call)
    p = call.params
    _not_blank(call, "title", "body")
    row = call.sandbox.store.insert("system_notices", {
        "ID": None, "uuid": None, "org_id": call.principal.org_id, "title": p["title"].strip(),
        "body": p["body"], "type": p["type"], "is_active": True, "created_by": call.principal.user_id,
        "created_at": call.sandbox.clock.iso(),
    })
    return ok(message="System notification created", notification_id=row["ID"])


async def dismiss_system(call: Call) -> dict[str, Any]:
    _manager(call)
    row = _system_row(call)
    call.sandbox.store.update("system_notices", row["ID"], {"is_active": False,
                                                            "dismissed_at": call.sandbox.clock.iso()})
    return ok(message="System notification dismissed", notification_id=row["ID"])


async def delete_system(call: Call) -> dict[str, Any]:
    _manager(call)
    row = _system_row(call)
    call.sandbox.store.delete("system_notices", [row["ID"]])
    return ok(message="System notification deleted", notification_id=row["ID"])


# -- organisation notices --------------------------------------------------------------------------

def _visible_notice(call: Call, now: str):
    me = call.principal

    def keep(r: Row) -> bool:
        if r["org_id"] != me.org_id or (r.get("expires_at") and r["expires_at"] <= now):
            return False
        return not r["target_account_types"] or me.account_type_id in r["target_account_types"]

    return keep


async def list_notices(call: Call) -> dict[str, Any]:
    store, now = call.sandbox.store, call.sandbox.clock.iso()
    rows = store.select("notices", _visible_notice(call, now))
    rows.sort(key=lambda r: (r["created_at"], r["ID"]), reverse=True)
    data = [{
        "id": r["ID"], "title": r["title"], "body": r["body"], "type": r["type"], "show_on_login": r["show_on_login"],
        "target_account_types": r["target_account_types"] or list(ACCOUNT_TYPES),
        "created_by": _person(store, "users", r["created_by"]), "created_at": r["created_at"],
        "expires_at": r["expires_at"],
    } for r in rows]
    return listing(data, len(data))


async def create_notice(call: Call) -> dict[str, Any]:
    p = call.params
    types = sorted(set(p.get("target_account_types") or []))  # ids 1..5, checked by the Param
    expires = None
    if p.get("expires_at"):
        try:
            expires = iso(parse_instant(p["expires_at"]))
        except (ValueError, TypeError, OverflowError):
            raise bad_param("expires_at", "must be an ISO 8601 date-time such as 2026-12-01T04:00:00Z") from None
    _not_blank(call, "title", "body")
    row = call.sandbox.store.insert("notices", {
        "ID": None, "uuid": None, "org_id": call.principal.org_id, "title": p["title"].strip(), "body": p["body"],
        "type": p["type"], "show_on_login": p["show_on_login"], "target_account_types": types,
        "created_by": call.principal.user_id, "created_at": call.sandbox.clock.iso(), "expires_at": expires,
    })
    return ok(message="Notice created", notice_id=row["ID"])


# -- web push --------------------------------------------------------------------------------------

async def subscribe_push(call: Call) -> dict[str, Any]:
    p, store, me = call.params, call.sandbox.store, call.principal
    if not _URL.fullmatch(p["endpoint"]):
        raise bad_param("endpoint", "must be the push service's https:// URL")
    fields = {"endpoint": p["endpoint"], "public_key": p["public_key"], "auth_token": p["auth_token"],
              "browser": p.get("browser"), "updated_at": call.sandbox.clock.iso()}
    for raw in store.select("push_subscriptions", where=(("user_id", me.user_id),)):
        if store.reveal("push_subscriptions", raw)["endpoint"] == p["endpoint"]:
            store.update("push_subscriptions", raw["ID"], fields)
            return ok(message="Push subscription updated", subscription_id=raw["ID"])
    row = store.insert("push_subscriptions", {"ID": None, "uuid": None, "org_id": me.org_id, "user_id": me.user_id,
                                              "created_at": fields["updated_at"], **fields})
    return ok(message="Push subscription registered", subscription_id=row["ID"])


NOTIFICATION_ID = Param("notification_id", "integer", required=True, min=1, about="notification id")
ENDPOINTS = [
    Endpoint("GET", PATH, list_mine, None, ("list",),
             params=(Param("unread_only", "boolean", default=False), Param("limit", "integer", default=20, min=1,
                     max=100), Param("offset", "integer", default=0, min=0)),
             summary="The caller's notifications, newest first, with unread_count"),
    Endpoint("GET", PATH, get_mine, None, ("get",), params=(NOTIFICATION_ID,),
             summary="One of the caller's notifications"),
    Endpoint("GET", PATH, list_system, None, params=(Param("active_only", "boolean", default=True),),
             summary="System-wide notices (without an action)"),
    Endpoint("POST", PATH, mark_read, None, csrf=True, params=(NOTIFICATION_ID,),
             summary="Mark one of the caller's notifications read (without an action)"),
    Endpoint("POST", PATH, create_system, None, ("create",), csrf=True,
             params=(Param("title", required=True, max_length=200), Param("body", required=True, max_length=5000),
                     Param("type", default="info", enum=("info", "warning", "critical"))),
             summary="Create a system notice (api.system.notifications.manage)"),
    Endpoint("POST", PATH, dismiss_system, None, ("dismiss",), csrf=True, params=(NOTIFICATION_ID,),
             summary="Dismiss a system notice: it stays, inactive (api.system.notifications.manage)"),
    Endpoint("POST", PATH, delete_system, None, ("delete",), csrf=True, params=(NOTIFICATION_ID,),
             summary="Delete a system notice (api.system.notifications.manage)"),
    Endpoint("GET", NOTICES, list_notices, NOTICES_KEY, summary="Active notices aimed at the caller's account type"),
    Endpoint("POST", NOTICES, create_notice, NOTICES_KEY, ("create",), csrf=True,
             params=(Param("title", required=True, max_length=100), Param("body", required=True, max_length=5000),
                     Param("type", default="info", enum=("info", "warning", "error", "success")),
                     Param("target_account_types", "int_list", min=1, max=5,
                           about="account type ids: 1 Staff, 2 Agent, 3 Landlord, 4 Tenant, 5 Contractor"),
                     Param("show_on_login", "boolean", default=False),
                     Param("expires_at", max_length=40)),
             summary="Create a notice for some or all account types"),
    Endpoint("POST", "/api/system/web-push-subscriptions", subscribe_push, None, csrf=True,
             params=(Param("endpoint", required=True, max_length=2000), Param("public_key", required=True,
                     max_length=500), Param("auth_token", required=True, max_length=500),
                     Param("browser", max_length=100)),
             summary="Register the caller's browser push subscription"),
]
