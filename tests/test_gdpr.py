"""GDPR consent over real HTTP: public (before login) and signed-in consents, declines kept as an audit
trail, both documented type lists, the rows the tenant GDPR export reads, bad input with no state change."""

from __future__ import annotations

from conftest import AGENT, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

from sandbox.store import ENCRYPTED

CONSENT, REPORT = "/api/gdpr/consent", "/api/tenants/gdpr-report"
T100 = "990e8400-e29b-41d4-a716-446655440001"


def consents(server) -> list[dict]:
    store = server.sandbox.store
    return [store.reveal("gdpr_consents", r) for r in store.select("gdpr_consents")]


def test_anonymous_consent_and_decline_are_both_kept(server, anon):
    r = anon.post(CONSENT, json={"consent_type": "analytics_cookies", "accepted": True, "consent_version": "1.0",
                                 "fingerprint": "fp_001", "choices": {"analytics": True, "marketing": False}})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    assert r.json() == {"success": True, "message": "Consent recorded"}
    assert anon.post(CONSENT, json={"consent_type": "analytics_cookies", "accepted": False,
                                    "fingerprint": "fp_001"}).status_code == 200
    first, second = consents(server)
    assert {k: first[k] for k in ("org_id", "user_id", "email", "consent_type", "accepted", "consent_version",
                                  "fingerprint", "choices")} == {
        "org_id": None, "user_id": None, "email": None, "consent_type": "analytics_cookies", "accepted": True,
        "consent_version": "1.0", "fingerprint": "fp_001", "choices": {"analytics": True, "marketing": False}}
    assert first["created_at"].startswith("2026-11-01T")
    assert (second["accepted"], second["consent_version"]) == (False, None)  # a decline is an audit row too
    raw = server.sandbox.store.select("gdpr_consents")[0]
    for field in ENCRYPTED.get("gdpr_consents", ()):  # email, fingerprint: encrypted at rest
        assert raw[field] is None or raw[field] != first[field]


def test_guide_types_and_signed_in_callers(server):
    for email in (STAFF, AGENT, CONTRACTOR, OTHER_ADMIN):
        with server.client(email) as client:
            r = client.post(CONSENT, json={"consent_type": "privacy_policy", "accepted": "true",
                                           "consent_version": "1.2"})
            assert r.status_code == 200, r.text
    rows = consents(server)
    assert [r["email"] for r in rows] == [STAFF, AGENT, CONTRACTOR, OTHER_ADMIN]  # their own address
    assert [r["org_id"] for r in rows] == [1, 1, 1, 2] and all(r["accepted"] is True for r in rows)
    users = {u["ID"] for u in server.sandbox.store.select("users")}
    assert all(r["user_id"] in users for r in rows)


def test_the_tenant_gdpr_export_lists_the_tenants_consents(server, admin, anon):
    tenant = server.sandbox.store.reveal("tenants", server.sandbox.store.raw_by_uuid("tenants", T100))
    assert anon.post(CONSENT, json={"consent_type": "terms", "accepted": True, "consent_version": "1.2",
                                    "email": tenant["tenant_email"].upper()}).status_code == 200
    assert anon.post(CONSENT, json={"consent_type": "marketing_cookies", "accepted": False,
                                    "email": tenant["tenant_email"]}).status_code == 200
    assert anon.post(CONSENT, json={"consent_type": "terms", "accepted": True,
                                    "email": "someone.else@example.com"}).status_code == 200
    r = admin.get(REPORT, params={"tenant_uuid": T100})
    assert r.status_code == 200, r.text
    found = r.json()["data"]["consent_records"]
    assert sorted((c["consent_type"], c["accepted"]) for c in found) == [("marketing_cookies", False),
                                                                         ("terms", True)]


def test_bad_input_is_refused_and_stores_nothing(server, anon, admin):
    cases = (({"consent_type": "everything"}, "consent_type"), ({"consent_type": None}, "consent_type"),
             ({"accepted": "maybe"}, "accepted"), ({"accepted": None}, "accepted"),
             ({"email": "not-an-email"}, "email"), ({"choices": "[1,"}, "choices"), ({"choices": [1]}, "choices"),
             ({"consent_version": "v" * 21}, "consent_version"))
    for change, word in cases:
        body = {"consent_type": "essential_cookies", "accepted": True, **change}
        assert_error(anon.post(CONSENT, json=body), 400, word)
        assert_error(admin.post(CONSENT, json=body), 400, word)
    r = anon.post(CONSENT, json={"consent_type": "essential_cookies", "accepted": True},
                  headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401  # a token that is given must be valid
    assert consents(server) == []
