"""Messaging: ``/api/email/send``, ``/api/email/templates``, ``/api/whatsapp/send``,
``/api/whatsapp/get-options`` (e-mail and WhatsApp references and guides).

Nothing is ever delivered. An e-mail send renders the template and records it with `events.record_email`
(table ``emails``: recipient and body encrypted at rest); a WhatsApp send records a ``whatsapp_messages``
row (phone number and text encrypted) against its job. Templates come from `fixtures/messaging.toml`.

- E-mail send takes both documented spellings: ``template_key``/``recipient_email`` (reference) and
  ``template``/``to`` (guide). The template's ``required_variables`` must be in ``variables``
  (``recipient_name`` may come from its own field). With ``job_id`` the e-mail is logged on that job.
- WhatsApp numbers must be E.164 (``+447700900123``; the reference example's ``447700000001`` without the
  plus is accepted too) and are stored with the plus.
- A send logged on a job is a write to it: another organisation's or an invisible job is 404, an archived
  job 403.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from .._paths import FIXTURES
from ..endpoints import Call, Endpoint, Param
from ..envelope import bad_param, listing, ok
from ..events import record_email
from .jobs import load_job

EMAIL_KEY = "api.email.send.manage"
WHATSAPP_KEY = "api.whatsapp.send"
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_E164 = re.compile(r"\+?[1-9]\d{7,14}")
_PHONE_JUNK = re.compile(r"[\s\-().]")
MAX_VALUE = 1000  # characters in one merge variable

with (FIXTURES / "messaging.toml").open("rb") as _fh:
    _TEMPLATES = tomllib.load(_fh)
EMAIL_TEMPLATES: list[dict[str, Any]] = _TEMPLATES["email"]
WHATSAPP_TEMPLATES: list[dict[str, Any]] = _TEMPLATES["whatsapp"]


def render(text: str, values: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), text)


# -- e-mail ----------------------------------------------------------------------------------------------

def email_template_row(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "ID": t["ID"], "template_name": t["template_name"], "template_key": t["template_key"],
        "subject": t["subject"], "is_active": t["is_active"], "name": t["template_key"],
        "display_name": t["template_name"], "description": t["description"],
        "required_variables": list(t["required_variables"]),
    }


async def email_templates(call: Call) -> dict[str, Any]:
    rows = [email_template_row(t) for t in EMAIL_TEMPLATES]
    return listing(rows, len(rows))


def _variables(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_param("variables", "must be a JSON object of merge fields")
    out = {}
    for key, value in raw.items():
        if isinstance(value, (dict, list)) or len(str(value)) > MAX_VALUE:
            raise bad_param("variables", f"{key} must be a text or number of at most {MAX_VALUE} characters")
        out[str(key)] = "" if value is None else str(value)
    return out


async def email_send(call: Call) -> dict[str, Any]:
    p = call.params
    job = load_job(call, p["job_id"], write=True) if p.get("job_id") is not None else None
    key = p.get("template_key") or p.get("template")
    if not key:
        raise bad_param("template_key", "required (or template)")
    recipient = p.get("recipient_email") or p.get("to")
    if not recipient:
        raise bad_param("recipient_email", "required (or to)")
    template = next((t for t in EMAIL_TEMPLATES if t["template_key"] == key), None)
    if template is None:
        raise bad_param("template_key", "no such email template; see GET /api/email/templates")
    if not template["is_active"]:
        raise bad_param("template_key", f"the template {key} is not active")
    values = _variables(p.get("variables"))
    if p.get("recipient_name"):
        values.setdefault("recipient_name", p["recipient_name"])
    missing = [v for v in template["required_variables"] if not values.get(v)]
    if missing:
        raise bad_param("variables", "missing " + ", ".join(missing))
    row = record_email(call.sandbox.store, call.sandbox.clock.iso(), org_id=call.principal.org_id,
                       template=key, to=[recipient], subject=render(template["subject"], values),
                       body=render(template["body"], values), job_id=job["ID"] if job else None,
                       sent_by=call.principal.user_id)
    return ok({"email_id": row["ID"], "uuid": row["uuid"], "status": "queued", "recipient": recipient,
               "template": key, "subject": row["subject"], "job_id": row["job_id"]},
              message="Email queued for delivery")


# -- WhatsApp --------------------------------------------------------------------------------------------

def whatsapp_template_row(t: dict[str, Any]) -> dict[str, Any]:
    return {k: t[k] for k in ("id", "name", "display_name", "description", "category", "language")} | {
        "variables": sorted(set(_PLACEHOLDER.findall(t["body"]))), "preview": t["body"]}


async def whatsapp_options(call: Call) -> dict[str, Any]:
    rows = [whatsapp_template_row(t) for t in WHATSAPP_TEMPLATES]
    return listing(rows, len(rows))


def e164(value: str) -> str:
    digits = _PHONE_JUNK.sub("", value)
    if not _E164.fullmatch(digits):
        raise bad_param("phone_number", "Invalid phone number format. Use E.164 format, e.g. +447700900123")
    return digits if digits.startswith("+") else f"+{digits}"


async def whatsapp_send(call: Call) -> dict[str, Any]:
    p = call.params
    job = load_job(call, p["job_id"], write=True)
    phone = e164(p["phone_number"])
    template = next((t for t in WHATSAPP_TEMPLATES if t["id"] == p["template_id"]), None)
    if template is None:
        raise bad_param("template_id", "no such WhatsApp template; see GET /api/whatsapp/get-options")
    text = render(template["body"], {"job_ref": job["job_ref"], "job_title": job["job_title"],
                                     "start_date": job.get("date_works_start_date") or "to be confirmed"})
    store = call.sandbox.store
    uuid = store.new_uuid()
    message_id = "wamid." + uuid.replace("-", "")[:24]
    store.insert("whatsapp_messages", {
        "ID": None, "uuid": uuid, "message_id": message_id, "org_id": job["org_id"], "job_id": job["ID"],
        "template_id": template["id"], "template": template["name"], "phone_number": phone, "text": text,
        "status": "sent", "sent_by": call.principal.user_id, "created_at": call.sandbox.clock.iso(),
    })
    return ok({"message_id": message_id, "status": "sent", "recipient": phone, "template": template["name"],
               "job_id": job["ID"], "text": text},
              message="WhatsApp message sent successfully", message_id=message_id)


ENDPOINTS = [
    Endpoint("POST", "/api/email/send", email_send, EMAIL_KEY, csrf=True, params=(
        Param("template_key", max_length=100, about="template key (reference); or `template` (guide)"),
        Param("template", max_length=100, about="template name (guide spelling of template_key)"),
        Param("recipient_email", "email", about="recipient (reference); or `to` (guide)"),
        Param("to", "email", about="recipient (guide spelling of recipient_email)"),
        Param("recipient_name", max_length=200),
        Param("variables", "object", about="merge fields substituted into {{placeholders}}"),
        Param("job_id", "integer", min=1, about="log the e-mail on this job"),
    ), summary="Send a templated e-mail (recorded, never delivered)"),
    Endpoint("GET", "/api/email/templates", email_templates, EMAIL_KEY, summary="The e-mail templates"),
    Endpoint("POST", "/api/whatsapp/send", whatsapp_send, WHATSAPP_KEY, csrf=True, params=(
        Param("job_id", "integer", required=True, min=1),
        Param("phone_number", required=True, max_length=30, about="E.164, e.g. +447700900123"),
        Param("template_id", "integer", required=True, min=1, about="see GET /api/whatsapp/get-options"),
    ), summary="Send a WhatsApp template message about a job (recorded, never delivered)"),
    Endpoint("GET", "/api/whatsapp/get-options", whatsapp_options, WHATSAPP_KEY,
             summary="The WhatsApp templates that can be sent"),
]
