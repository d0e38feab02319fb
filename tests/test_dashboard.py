"""The demo dashboard at /_sandbox/: the page over plain HTTP, its stats, and the page driven in headless Chromium.

The browser tests use Debian's Chromium through Playwright's Python package (never `playwright install`)
and skip when either is missing; CI installs both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import AGENT, CLOCK_START, JOB_1001

from sandbox import Settings
from sandbox.testing import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 10_000  # the page polls every 1-2.5 s; nothing here should take longer than a few polls


def control(server: LiveServer, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, server.url + "/_sandbox/" + path, **kwargs)


def tid(name: str, **attrs: str) -> str:
    """A CSS selector for a data-testid, optionally with more data-* attributes."""
    return f'[data-testid="{name}"]' + "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())


@contextmanager
def browser_page(**context_options) -> Iterator:
    """A fresh headless Chromium page; skips the test when Chromium or Playwright is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1200}, **context_options)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_default_timeout(WAIT_MS)
            yield page, sync_api.expect
            assert errors == [], errors  # no uncaught exception in the page's script
        finally:
            browser.close()


# -- plain HTTP ------------------------------------------------------------------------------------------


def test_the_page_is_one_self_contained_document(server):
    r = httpx.get(server.url + "/_sandbox/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html.startswith("<!doctype html>") and "<title>PropOps Sandbox" in html
    # Nothing from elsewhere: no absolute URL at all, every src/href/url() is local or data:.
    assert "http://" not in html and "https://" not in html
    refs = re.findall(r"""\b(?:src|href|action)\s*=\s*["']([^"']*)""", html)
    refs += re.findall(r"url\(\s*['\"]?([^)'\"]*)", html) + re.findall(r"@import\s+['\"]([^'\"]+)", html)
    assert refs == ["data:,"]  # the blank favicon, so the browser asks for no /favicon.ico
    assert not re.search(r"<script[^>]+src|<link[^>]+stylesheet|<iframe|<img", html)
    # The browser enforces it too: the page may only talk to its own origin.
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'unsafe-inline'" in csp
    assert r.headers["cache-control"] == "no-store"
    for name in ("counts", "scenario-select", "clock-now", "clock-advance-day", "clock-freeze", "journal-list",
                 "reset-button", "accounts", "jobs-board", "admin-key-input"):
        assert f'data-testid="{name}"' in html, name
    # Without the trailing slash the browser is sent to the page.
    assert httpx.get(server.url + "/_sandbox", follow_redirects=True).text == html


def test_stats_count_every_resource_per_organisation_and_jobs_per_status(server, admin):
    store = server.sandbox.store

    def stats() -> dict:
        r = control(server, "GET", "stats")
        assert r.status_code == 200 and r.json()["success"] is True
        return r.json()["data"]

    data = stats()
    for table in ("jobs", "contractors", "agents", "branches", "tenants", "users"):
        assert data["resources"][table] == store.count(table) > 0, table
        orgs = Counter(row["org_id"] for row in store.select(table))
        assert {o["id"]: o["resources"][table] for o in data["organisations"]} == dict(orgs), table
    assert [o["name"] for o in data["organisations"]] == [r["name"] for r in store.select("organisations")]
    by_status = Counter(row["status_id"] for row in store.select("jobs"))
    assert [s["name"] for s in data["jobs_by_status"]][:3] == ["Open", "Assigned", "In Progress"]
    expected = {s["id"]: by_status[s["id"]] for s in data["statuses"]}
    assert {s["id"]: s["count"] for s in data["jobs_by_status"]} == expected
    # The counts are live: a job created through the API is counted at once, as Open, in its organisation.
    r = admin.post("/api/jobs/manage", json={"action": "create", "job_title": "Dashboard test", "priority_id": 2,
                                             "job_description": "Counted", "status_id": 1, "job_type_id": 3,
                                             "address_id": 5})
    assert r.status_code == 201, r.text
    after = stats()
    assert after["resources"]["jobs"] == data["resources"]["jobs"] + 1
    assert after["jobs_by_status"][0]["count"] == data["jobs_by_status"][0]["count"] + 1
    assert after["organisations"][0]["resources"]["jobs"] == data["organisations"][0]["resources"]["jobs"] + 1
    # ... and it says where the journal stands, so the page can follow a reset made elsewhere.
    journal = control(server, "GET", "requests").json()["data"]
    assert after["journal"] == {"count": len(journal), "first_id": journal[0]["id"], "last_id": journal[-1]["id"]}
    control(server, "POST", "reset")
    assert stats()["journal"] == {"count": 0, "first_id": None, "last_id": None}
    assert stats()["resources"]["jobs"] == data["resources"]["jobs"]


def test_the_admin_key_guards_the_stats_but_not_the_page():
    with LiveServer(Settings(clock_start=CLOCK_START, admin_key="s3cret")) as server:
        assert control(server, "GET", "").status_code == 200  # the page holds no data; a browser can open it
        assert control(server, "GET", "stats").status_code == 401
        assert control(server, "GET", "stats", headers={"X-Sandbox-Admin-Key": "nope"}).status_code == 401
        assert control(server, "GET", "stats", headers={"X-Sandbox-Admin-Key": "s3cret"}).status_code == 200


def test_no_control_plane_no_dashboard():
    with LiveServer(Settings(clock_start=CLOCK_START, control_plane=False)) as server:
        assert control(server, "GET", "").status_code == 404
        assert control(server, "GET", "stats").status_code == 404


# -- in a browser ----------------------------------------------------------------------------------------


def test_the_dashboard_drives_the_sandbox_in_a_browser(server, admin):
    store = server.sandbox.store
    org_1_open = sum(1 for j in store.select("jobs") if j["org_id"] == 1 and j["status_id"] == 1)
    with browser_page(permissions=["clipboard-read", "clipboard-write"]) as (page, expect):
        page.goto(server.url + "/_sandbox/")

        # Counts, straight from the store.
        for table in ("jobs", "contractors", "agents", "branches", "tenants"):
            expect(page.locator(tid(f"count-{table}-value"))).to_have_text(str(store.count(table)))
        open_jobs = sum(1 for j in store.select("jobs") if j["status_id"] == 1)
        expect(page.locator(tid("status-count", status="Open"))).to_contain_text(str(open_jobs))

        # The jobs board, read through the API: JOB-001 is an Open card with its priority and contractor.
        column = page.locator(tid("board-column", status="Open"))
        card = column.locator(tid("job-card", ref="JOB-001"))
        expect(card).to_contain_text("Boiler Service - Unit 001")
        expect(card).to_contain_text("Medium")
        expect(card).to_contain_text("Contractor_001 Surname_001")
        expect(column.locator(tid("job-card"))).to_have_count(org_1_open)

        # A request made elsewhere appears in the journal, newest first; a write refreshes the board.
        assert admin.get("/api/jobs/manage", params={"action": "nope"}).status_code == 400
        r = admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "job_title": "Boiler (demo)"})
        assert r.status_code == 200, r.text
        visible = page.locator(tid("journal-entry", own="false"))
        expect(visible.first).to_have_attribute("data-method", "POST")
        expect(visible.first).to_have_attribute("data-status", "200")
        expect(visible.nth(1)).to_have_attribute("data-status", "400")
        expect(visible.nth(1)).to_contain_text("/api/jobs/manage?action=nope")
        expect(visible.nth(1).locator(".http")).to_have_class(re.compile(r"\bc4\b"))
        expect(card).to_contain_text("Boiler (demo)")
        # The page's own requests are in the journal too, hidden until asked for.
        own = page.locator(tid("journal-entry", own="true"))
        assert own.count() >= 2 and not own.first.is_visible()
        page.locator(tid("journal-hide-own")).uncheck()
        expect(own.first).to_be_visible()
        page.locator(tid("journal-hide-own")).check()

        # Switch the scenario from the page; the control plane agrees, and the journal shows the effect.
        page.locator(tid("scenario-select")).select_option("maintenance")
        expect(page.locator(tid("scenario-active"))).to_have_text("maintenance")
        assert control(server, "GET", "scenario").json()["data"]["scenario"] == ["maintenance"]
        expect(page.locator(tid("scenario-description"))).to_contain_text("Maintenance mode")
        with server.client(AGENT, csrf=False) as agent:
            assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 503
        expect(visible.first).to_have_attribute("data-status", "503")
        expect(visible.first.locator(tid("journal-effect"))).to_have_text("maintenance")

        # The clock: +1 day moves it, freeze stops it, +1 h moves it by exactly an hour.
        clock_now = page.locator(tid("clock-now"))
        expect(clock_now).to_contain_text("2026-11-01 09:")
        page.locator(tid("clock-advance-day")).click()
        expect(clock_now).to_contain_text("2026-11-02 09:")
        page.locator(tid("clock-freeze")).click()
        expect(page.locator(tid("clock-frozen"))).to_have_text("frozen")
        frozen = control(server, "GET", "clock").json()["data"]
        assert frozen["frozen"] is True
        page.locator(tid("clock-advance-hour")).click()
        expect(clock_now).to_contain_text("2026-11-02 10:")
        later = control(server, "GET", "clock").json()["data"]["now"]
        assert later > frozen["now"]
        expect(clock_now).to_have_attribute("data-now", later)

        # Demo accounts: "Log in" makes a token appear, the one the control plane lists; Copy copies it.
        row = page.locator(tid("account", email=AGENT))
        expect(page.locator(tid("account"))).to_have_count(6)
        expect(row.locator(tid("account-token"))).to_have_count(0)
        row.locator(tid("account-login")).click()
        expect(row.locator(tid("account-token"))).to_have_count(1)
        accounts = control(server, "GET", "accounts").json()["data"]
        token = next(a for a in accounts if a["email"] == AGENT)["tokens"][-1]
        expect(row.locator(tid("account-token"))).to_have_attribute("data-token", token)
        row.locator(tid("copy-token")).click()
        expect(row.locator(tid("copy-token"))).to_have_attribute("data-copied", "true")
        assert page.evaluate("navigator.clipboard.readText()") == token

        # Reset: the journal empties, the scenario and clock go back, the board shows the baseline again.
        page.locator(tid("reset-button")).click()
        expect(page.locator(tid("scenario-active"))).to_have_text("default")
        expect(page.locator(tid("journal-empty"))).to_be_visible()
        expect(visible).to_have_count(0)
        expect(clock_now).to_contain_text("2026-11-01 09:")
        expect(page.locator(tid("clock-frozen"))).to_have_text("running")
        expect(card).to_contain_text("Boiler Service - Unit 001")
        assert control(server, "GET", "scenario").json()["data"]["scenario"] == ["default"]
        assert server.sandbox.journal.query(path="/api/jobs/manage", method="POST") == []
        # A request after the reset shows up again.
        with server.client(AGENT, csrf=False) as agent:
            assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 200
        expect(visible.first).to_contain_text("/api/jobs/manage?action=list")


def test_the_page_asks_once_for_the_admin_key():
    with LiveServer(Settings(clock_start=CLOCK_START, admin_key="s3cret")) as server, \
            browser_page() as (page, expect):
        # The page opens without the key; its own calls carry none until it is typed in.
        page.goto(server.url + "/_sandbox/")
        panel = page.locator(tid("admin-key-panel"))
        expect(panel).to_be_visible()
        page.locator(tid("admin-key-input")).fill("wrong")
        page.locator(tid("admin-key-submit")).click()
        expect(page.locator(tid("admin-key-message"))).to_contain_text("refused")
        expect(panel).to_be_visible()
        page.locator(tid("admin-key-input")).fill("s3cret")
        page.locator(tid("admin-key-submit")).click()
        expect(panel).to_be_hidden()
        expect(page.locator(tid("count-jobs-value"))).to_have_text(str(server.sandbox.store.count("jobs")))
        expect(page.locator(tid("scenario-active"))).to_have_text("default")
        assert page.evaluate("sessionStorage.getItem('propops-sandbox-admin-key')") == "s3cret"
        # Once: after a reload the key comes from the tab's session storage.
        page.reload()
        expect(page.locator(tid("count-jobs-value"))).to_have_text(str(server.sandbox.store.count("jobs")))
        expect(panel).to_be_hidden()
        expect(page.locator(tid("jobs-board")).locator(tid("job-card", ref="JOB-001"))).to_be_visible()
