"""Per-user settings under /api/users/: profile, notification channels, dashboard appearance (background and
banner image), dashboard widget layout and the avatar image.

- One ``user_settings`` row per user holds the preferences (created on first write; `DEFAULTS` until then).
  Images are stored with `call.sandbox.blobs`, recognised by content (JPEG or PNG) and served back byte for
  byte; replacing or clearing one frees the old blob.
- Anyone edits their own settings. Someone else's (same organisation only; another organisation's user is a
  404 like a missing one) needs the users key, a Staff account and a role no more powerful than one's own.
- Avatars are visible to every colleague of the same organisation.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from .. import media
from ..endpoints import Call, Endpoint, Param
from ..envelope import bad_param, not_found, ok
from ..store import Row
from ._uploads import in_thread, read_upload
from .user_admin import NAME, load_user, may_manage, person_changes, role_change, serialize

MAX_IMAGE = 5 * 2**20
DEFAULT_WIDGETS = ("new-jobs", "open-jobs", "overdue-jobs", "sla-breaches", "jobs-by-status", "recent-activity")
DEFAULTS: dict[str, Any] = {
    "hidden_ids": [], "widget_order": list(DEFAULT_WIDGETS), "widgets": [], "dashboard_bg_custom": None,
    "banner": None, "avatar": None,
    "notifications": {"email_notifications": True, "push_notifications": True, "in_app_notifications": True},
}
_CSS_BAD = re.compile(r"[<>{};\\]|/\*|url\s*\(|expression\s*\(|@import", re.IGNORECASE)
_WIDGET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def _row(call: Call, user_id: int) -> Row | None:
    rows = call.sandbox.store.select("user_settings", where=(("user_id", user_id),))
    return rows[0] if rows else None


def settings_of(call: Call, user_id: int) -> dict[str, Any]:
    row = _row(call, user_id)
    return {**DEFAULTS, **row} if row else {**DEFAULTS, "user_id": user_id}


def save(call: Call, user: Row, changes: dict[str, Any]) -> None:
    store = call.sandbox.store
    row = _row(call, user["ID"])
    changes = {**changes, "updated_at": call.sandbox.clock.iso()}
    if row:
        store.update("user_settings", row["ID"], changes)
    else:
        store.insert("user_settings", {**DEFAULTS, "ID": None, "uuid": None, "user_id": user["ID"],
                                       "org_id": user["org_id"], **changes})


def target(call: Call, field: str, *, write: bool) -> Row:
    """The user named by `field` (the caller when absent); someone else only as `may_manage` allows."""
    uuid = call.params.get(field)
    me = call.sandbox.store.raw("users", call.principal.user_id)
    user = me if uuid is None else load_user(call, uuid)
    if write or user["ID"] != me["ID"]:
        may_manage(call, user)
    return user


def free(call: Call, image: dict[str, Any] | None) -> None:
    if not image:
        return
    blob = image["blob"]
    in_use = call.sandbox.store.select("user_settings", lambda r: any(
        (r.get(k) or {}).get("blob") == blob for k in ("avatar", "banner")))
    if not in_use:
        call.sandbox.blobs.delete(blob)


async def read_image(call: Call, field: str) -> dict[str, Any]:
    data, kind, name = await read_upload(call, (field,), ("jpeg", "png"))
    if len(data) > MAX_IMAGE:
        raise bad_param(field, f"an image may be at most {MAX_IMAGE // 2**20} MB")
    width, height = await in_thread(field, media.inspect_image, data)
    return {"blob": call.sandbox.blobs.put(data), "mime_type": kind.mime, "size": len(data), "width": width,
            "height": height, "file_name": name, "uploaded_at": call.sandbox.clock.iso()}


def image_response(call: Call, image: dict[str, Any] | None, what: str) -> Response:
    data = call.sandbox.blobs.get(image["blob"]) if image else None
    if data is None:
        raise not_found(what)
    return Response(data, media_type=image["mime_type"], headers={"Cache-Control": "private"})


# -- profile ---------------------------------------------------------------------------------------

async def get_profile(call: Call) -> dict[str, Any]:
    return ok(serialize(call, target(call, "user_uuid", write=False)))


async def put_profile(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    user = target(call, "user_uuid", write=True)
    changes = person_changes(call) | role_change(call, user)
    if not changes:
        raise bad_param("first_name", "give at least one of first_name, last_name, phone, role_id")
    store.update("users", user["ID"], {**changes, "updated_at": call.sandbox.clock.iso()})
    return ok(serialize(call, store.raw("users", user["ID"])), message="Profile updated successfully")


# -- notification settings -------------------------------------------------------------------------

async def get_notifications(call: Call) -> dict[str, Any]:
    user = target(call, "user_uuid", write=False)
    return ok({"user_uuid": user["uuid"], **settings_of(call, user["ID"])["notifications"]})


async def set_notifications(call: Call) -> dict[str, Any]:
    user = target(call, "user_uuid", write=True)
    given = {k: call.params[k] for k in DEFAULTS["notifications"] if call.params.get(k) is not None}
    if not given:
        raise bad_param("email_notifications", "give at least one of email/push/in_app_notifications")
    save(call, user, {"notifications": {**settings_of(call, user["ID"])["notifications"], **given}})
    return ok()


# -- appearance ------------------------------------------------------------------------------------

async def get_appearance(call: Call) -> dict[str, Any] | Response:
    found = settings_of(call, call.principal.user_id)
    if call.params.get("action") == "banner":
        return image_response(call, found["banner"], "Banner")
    path = "/api/users/appearance?action=banner" if found["banner"] else None
    return ok(dashboard_bg_custom=found["dashboard_bg_custom"], dashboard_banner_path=path)


async def set_appearance(call: Call) -> dict[str, Any]:
    p = call.params
    user = target(call, "uuid", write=True)
    old = settings_of(call, user["ID"])
    changes: dict[str, Any] = {}
    if "dashboard_bg_custom" in p:
        css = (p["dashboard_bg_custom"] or "").strip() or None
        if css is not None and _CSS_BAD.search(css):
            raise bad_param("dashboard_bg_custom", "must be a plain CSS background value (no url(), braces, ; or <)")
        changes["dashboard_bg_custom"] = css
    if p.get("banner_file") is not None:
        if p.get("clear_banner"):
            raise bad_param("clear_banner", "cannot clear the banner and upload one at once")
        changes["banner"] = await read_image(call, "banner_file")
    elif p.get("clear_banner"):
        changes["banner"] = None
    if not changes and "clear_banner" not in p:
        raise bad_param("dashboard_bg_custom", "give dashboard_bg_custom, banner_file or clear_banner")
    save(call, user, changes)
    if "banner" in changes:
        free(call, old["banner"])
    banner = changes["banner"] if "banner" in changes else old["banner"]
    data = {"file_name": banner["file_name"], "url": "/api/users/appearance?action=banner"} if banner else None
    return ok(data)


# -- dashboard widgets -----------------------------------------------------------------------------

async def get_widgets(call: Call) -> dict[str, Any]:
    found = settings_of(call, call.principal.user_id)
    return ok(hidden_ids=found["hidden_ids"], widget_order=found["widget_order"])


async def set_widgets(call: Call) -> dict[str, Any]:
    widgets = call.params.get("widgets")
    me = call.sandbox.store.raw("users", call.principal.user_id)
    if widgets is None:  # absent or empty: back to the default layout
        save(call, me, {k: DEFAULTS[k] for k in ("hidden_ids", "widget_order", "widgets")})
        return ok()
    if not isinstance(widgets, list) or len(widgets) > 100:
        raise bad_param("widgets", "must be an array of up to 100 {id, visible, order} objects")
    clean, seen = [], set()
    for n, w in enumerate(widgets):
        if not isinstance(w, dict) or not isinstance(w.get("id"), str) or not _WIDGET_ID.fullmatch(w["id"]):
            raise bad_param("widgets", f"entry {n}: id must be a widget id string (letters, digits, - _ . :)")
        visible, order = w.get("visible", True), w.get("order", n)
        if not isinstance(visible, bool):
            raise bad_param("widgets", f"entry {n}: visible must be true or false")
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= 10_000:
            raise bad_param("widgets", f"entry {n}: order must be an integer from 0 to 10000")
        if w["id"] in seen:
            raise bad_param("widgets", f"entry {n}: widget {w['id']} is given twice")
        seen.add(w["id"])
        clean.append({"id": w["id"], "visible": visible, "order": order})
    ordered = sorted(clean, key=lambda w: w["order"])
    save(call, me, {"widgets": clean, "widget_order": [w["id"] for w in ordered],
                    "hidden_ids": [w["id"] for w in ordered if not w["visible"]]})
    return ok()


# -- avatar ----------------------------------------------------------------------------------------

async def get_avatar(call: Call) -> Response:
    uuid = call.params.get("user_uuid")  # every colleague's avatar is visible: no may_manage
    user = load_user(call, uuid) if uuid else call.sandbox.store.raw("users", call.principal.user_id)
    return image_response(call, settings_of(call, user["ID"])["avatar"], "Avatar")


async def set_avatar(call: Call) -> dict[str, Any]:
    user = target(call, "user_uuid", write=True)
    old = settings_of(call, user["ID"])["avatar"]
    if call.action == "delete":
        if old is None:
            raise not_found("Avatar")
        save(call, user, {"avatar": None})
        free(call, old)
        return ok(message="Avatar deleted successfully")
    image = await read_image(call, "avatar")
    save(call, user, {"avatar": image})
    free(call, old)
    return ok({"file_name": image["file_name"], "url": f"/api/users/avatar?user_uuid={user['uuid']}"},
              message="Avatar updated successfully")


CSS = Param("dashboard_bg_custom", max_length=500)
ENDPOINTS = [
    Endpoint("GET", "/api/users/profile", get_profile, "api.users.users.manage", params=(Param("user_uuid", "uuid"),),
             summary="Own profile, or (Staff) another user's"),
    Endpoint("PUT", "/api/users/profile", put_profile, "api.users.users.manage", csrf=True, params=(
        Param("user_uuid", "uuid", required=True), Param("first_name", max_length=NAME),
        Param("last_name", max_length=NAME), Param("phone", max_length=30), Param("role_id", "integer", min=1, max=99),
    ), summary="Update a profile (own, or another user's as Staff)"),
    Endpoint("GET", "/api/users/notification-settings", get_notifications, "api.users.notification_settings.manage",
             params=(Param("user_uuid", "uuid"),), summary="Notification channel preferences"),
    Endpoint("POST", "/api/users/notification-settings", set_notifications, "api.users.notification_settings.manage",
             csrf=True, params=(Param("user_uuid", "uuid"), Param("email_notifications", "boolean"),
                                Param("push_notifications", "boolean"), Param("in_app_notifications", "boolean")),
             summary="Save notification channel preferences"),
    Endpoint("GET", "/api/users/appearance", get_appearance, "api.users.appearance.manage",
             params=(Param("action", enum=("banner",)),), summary="Dashboard background and banner (or the banner)"),
    Endpoint("POST", "/api/users/appearance", set_appearance, "api.users.appearance.manage", csrf=True, params=(
        Param("uuid", "uuid", required=True), Param("banner_file", "file"), Param("clear_banner", "boolean"), CSS,
    ), summary="Update the dashboard background and/or banner"),
    Endpoint("GET", "/api/users/dashboard-widget-preferences", get_widgets, None,
             summary="The caller's hidden widgets and widget order"),
    Endpoint("POST", "/api/users/dashboard-widget-preferences", set_widgets,
             "api.users.dashboard_widget_preferences.manage", csrf=True, params=(Param("widgets", "object"),),
             summary="Save the caller's dashboard layout"),
    Endpoint("GET", "/api/users/avatar", get_avatar, "api.users.avatar.manage",
             params=(Param("user_uuid", "uuid"),), summary="A user's avatar image (own when no user_uuid)"),
    *(Endpoint("POST", "/api/users/avatar", set_avatar, "api.users.avatar.manage", (action,), csrf=True,
               params=(Param("user_uuid", "uuid", required=True), *((Param("avatar", "file"),) if file else ())),
               summary=summary)
      for action, file, summary in (("upload", True, "Upload a user's avatar (JPEG or PNG)"),
                                    ("delete", False, "Remove a user's avatar"))),
]
