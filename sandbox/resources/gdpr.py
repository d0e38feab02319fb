"""GDPR consent: ``POST /api/gdpr/consent`` (GDPR reference and guide).

Public: usable before login (no bearer token needed, no CSRF field documented). Every call appends a
``gdpr_consents`` row — a decline (``accepted: false``) too, so the table is an audit trail of consent given
or refused (UK GDPR Art. 7). Rows are never updated. The tenant GDPR export (tenants.py) lists the rows
whose ``email`` is the tenant's.

Row: {ID, uuid, org_id, user_id, email, consent_type, accepted, consent_version, fingerprint, choices,
created_at}. A signed-in caller's consent carries their organisation, user id and (when no ``email`` is
given) their own address; an anonymous one has org_id null.
"""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint, Param
from ..envelope import bad_param, ok

# The reference enum, then the guide's.
CONSENT_TYPES = ("essential_cookies", "analytics_cookies", "marketing_cookies", "cookies", "privacy_policy",
                 "terms")


async def consent(call: Call) -> dict[str, Any]:
    p, me, store = call.params, call.principal, call.sandbox.store
    choices = p.get("choices")
    if choices is not None and not isinstance(choices, dict):
        raise bad_param("choices", "must be a JSON object of per-category choices")
    email = p.get("email")
    if email is None and me is not None:
        user = store.plain("users", me.user_id)
        email = user.get("email") if user else None
    store.insert("gdpr_consents", {
        "ID": None, "uuid": None, "org_id": me.org_id if me else None, "user_id": me.user_id if me else None,
        "email": email.lower() if email else None, "consent_type": p["consent_type"], "accepted": p["accepted"],
        "consent_version": p.get("consent_version"), "fingerprint": p.get("fingerprint"), "choices": choices,
        "created_at": call.sandbox.clock.iso(),
    })
    return ok(message="Consent recorded")


ENDPOINTS = [
    Endpoint("POST", "/api/gdpr/consent", consent, None, auth="optional", params=(
        Param("consent_type", required=True, enum=CONSENT_TYPES),
        Param("accepted", "boolean", required=True, about="true = accepted, false = declined"),
        Param("consent_version", max_length=20, about="the policy version, e.g. 1.2"),
        Param("fingerprint", max_length=200, about="browser fingerprint tying pre-login consent to a device"),
        Param("choices", "object", about="free-form per-category choices"),
        Param("email", "email", about="who is consenting (nullable)"),
    ), summary="Record a consent given or refused (public; every call is kept)"),
]
