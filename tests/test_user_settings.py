"""Per-user settings under /api/users/ over real HTTP: profile (read/update, Staff over others, role rules),
notification channels, dashboard appearance (background, banner image), widget layout and avatars —
each role, another organisation (404 as missing), bad input (400 naming the field, nothing stored) and CSRF."""

from __future__ import annotations

import io

import httpx
import pytest
from conftest import ADMIN, AGENT, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error
from PIL import Image

OK = {"success": True, "message": "Operation completed successfully"}
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def png(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (6, 4), colour).save(out, "PNG")
    return out.getvalue()


def uuid_of(server, user_id: int) -> str:
    return server.sandbox.store.raw("users", user_id)["uuid"]


def no_csrf(server, client) -> httpx.Client:
    """The same session without the CSRF header (signing in again would end the fixture's session)."""
    return httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": client.headers["Authorization"]})


def settings_rows(server) -> list:
    return server.sandbox.store.select("user_settings")


# -- profile ---------------------------------------------------------------------------------------

def test_profile_read_and_update_own_and_others(server, admin):
    r = admin.get("/api/users/profile")
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    assert_envelope_headers(r)
    me = r.json()["data"]
    assert (me["ID"], me["email"], me["account_type_name"], me["account_status_name"], me["role_id"]) == (
        1, ADMIN, "Staff", "Active", 1)
    staff = admin.get("/api/users/profile", params={"user_uuid": uuid_of(server, 2)}).json()["data"]
    assert (staff["email"], staff["role"], staff["role_id"]) == (STAFF, "Staff", 3)

    r = admin.put("/api/users/profile", json={"user_uuid": me["uuid"], "first_name": " Ada ", "phone": "07700900123"})
    assert r.status_code == 200 and r.json()["data"]["first_name"] == "Ada", r.text
    again = admin.get("/api/users/profile").json()["data"]
    assert (again["first_name"], again["last_name"], again["phone"]) == ("Ada", "Admin", "07700900123")
    assert server.sandbox.store.raw("users", 1)["first_name"] != "Ada"  # encrypted at rest

    r = admin.put("/api/users/profile", json={"user_uuid": staff["uuid"], "role_id": 2, "last_name": "Integrator"})
    assert r.status_code == 200, r.text
    assert (server.sandbox.store.raw("users", 2)["role"], r.json()["data"]["last_name"]) == ("API", "Integrator")


def test_profile_refusals_change_nothing(server, admin):
    me, staff = uuid_of(server, 1), uuid_of(server, 2)
    before = server.sandbox.store.get("users", 2)
    assert_error(admin.put("/api/users/profile", json={"user_uuid": staff, "first_name": "  "}), 400, "first_name")
    assert_error(admin.put("/api/users/profile", json={"user_uuid": staff, "role_id": 4}), 400, "role_id")
    assert_error(admin.put("/api/users/profile", json={"user_uuid": staff, "role_id": 99}), 400, "role_id")
    assert_error(admin.put("/api/users/profile", json={"user_uuid": staff}), 400, "first_name")
    assert_error(admin.put("/api/users/profile", json={"first_name": "X"}), 400, "user_uuid")
    assert_error(admin.put("/api/users/profile", json={"user_uuid": me, "role_id": 3}), 403, "own role")
    with no_csrf(server, admin) as bare:
        assert_error(bare.put("/api/users/profile", json={"user_uuid": staff, "first_name": "X"}), 403, "CSRF")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.put("/api/users/profile", json={"user_uuid": staff, "first_name": "X"}), 404, "User")
        assert_error(other.get("/api/users/profile", params={"user_uuid": staff}), 404, "User not found")
        assert other.get("/api/users/profile").json()["data"]["email"] == OTHER_ADMIN
    assert server.sandbox.store.get("users", 2) == before


@pytest.mark.parametrize("email", [STAFF, AGENT, CONTRACTOR])
def test_profile_needs_the_users_key(server, email):
    with server.client(email) as client:
        assert_error(client.get("/api/users/profile"), 403, "permission")
        assert_error(client.put("/api/users/profile", json={"user_uuid": uuid_of(server, 1), "phone": "1"}), 403)


# -- notification settings -------------------------------------------------------------------------

@pytest.mark.parametrize("email", [ADMIN, STAFF, AGENT, CONTRACTOR])
def test_each_role_keeps_its_own_notification_channels(server, email):
    with server.client(email) as client:
        r = client.get("/api/users/notification-settings")
        assert r.status_code == 200, r.text
        assert {k: v for k, v in r.json()["data"].items() if k != "user_uuid"} == {
            "email_notifications": True, "push_notifications": True, "in_app_notifications": True}
        assert client.post("/api/users/notification-settings",
                           json={"push_notifications": False, "email_notifications": "false"}).json() == OK
        got = client.get("/api/users/notification-settings").json()["data"]
        assert (got["email_notifications"], got["push_notifications"], got["in_app_notifications"]) == (
            False, False, True)
    with server.client(OTHER_ADMIN) as other:  # someone else's preferences are untouched
        assert other.get("/api/users/notification-settings").json()["data"]["push_notifications"] is True


def test_notification_settings_of_others_and_bad_input(server, admin):
    staff = uuid_of(server, 2)
    assert admin.post("/api/users/notification-settings",
                      json={"user_uuid": staff, "in_app_notifications": False}).json() == OK
    assert admin.get("/api/users/notification-settings",
                     params={"user_uuid": staff}).json()["data"]["in_app_notifications"] is False
    with server.client(AGENT) as agent:
        assert_error(agent.get("/api/users/notification-settings", params={"user_uuid": staff}), 403)
        assert_error(agent.post("/api/users/notification-settings",
                                json={"user_uuid": staff, "push_notifications": False}), 403)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/users/notification-settings", params={"user_uuid": staff}), 404, "User")
    rows = settings_rows(server)
    assert_error(admin.post("/api/users/notification-settings", json={"push_notifications": "maybe"}), 400,
                 "push_notifications")
    assert_error(admin.post("/api/users/notification-settings", json={}), 400, "email_notifications")
    with no_csrf(server, admin) as bare:
        assert_error(bare.post("/api/users/notification-settings", json={"push_notifications": False}), 403, "CSRF")
    assert settings_rows(server) == rows


# -- appearance ------------------------------------------------------------------------------------

def test_appearance_background_and_banner_round_trip(server):
    with server.client(CONTRACTOR) as client:
        me = uuid_of(server, 4)
        empty = client.get("/api/users/appearance").json()
        assert (empty["dashboard_bg_custom"], empty["dashboard_banner_path"]) == (None, None)
        assert_error(client.get("/api/users/appearance", params={"action": "banner"}), 404, "Banner not found")
        banner = png()
        css = "linear-gradient(135deg, #667eea 0%, #764ba2 100%)"
        r = client.post("/api/users/appearance", data={"uuid": me, "dashboard_bg_custom": css},
                        files={"banner_file": ("banner.png", banner, "image/png")})
        assert r.status_code == 200 and r.json()["success"] is True, r.text
        got = client.get("/api/users/appearance").json()
        assert (got["dashboard_bg_custom"], got["dashboard_banner_path"]) == (
            css, "/api/users/appearance?action=banner")
        image = client.get("/api/users/appearance", params={"action": "banner"})
        assert (image.status_code, image.content, image.headers["content-type"]) == (200, banner, "image/png")
        blob = settings_rows(server)[0]["banner"]["blob"]
        assert client.post("/api/users/appearance", json={"uuid": me, "clear_banner": True,
                                                          "dashboard_bg_custom": None}).status_code == 200
        got = client.get("/api/users/appearance").json()
        assert (got["dashboard_bg_custom"], got["dashboard_banner_path"]) == (None, None)
        assert server.sandbox.blobs.get(blob) is None  # the old image is freed
    with server.client(STAFF) as staff:  # one user's appearance is not another's
        assert staff.get("/api/users/appearance").json()["dashboard_bg_custom"] is None


def test_appearance_refusals(server, admin):
    me, staff = uuid_of(server, 1), uuid_of(server, 2)
    for fields, files, field in (
        ({"uuid": me, "dashboard_bg_custom": "red; background: url(http://evil)"}, None, "dashboard_bg_custom"),
        ({"uuid": me}, {"banner_file": ("banner.png", PDF, "image/png")}, "banner_file"),
        ({"uuid": me}, {"banner_file": ("banner.png", b"", "image/png")}, "banner_file"),
        ({"uuid": me, "dashboard_bg_custom": "x" * 501}, None, "dashboard_bg_custom"),
        ({"uuid": me}, None, "dashboard_bg_custom"),
        ({"dashboard_bg_custom": "red"}, None, "uuid"),
    ):
        assert_error(admin.post("/api/users/appearance", data=fields, files=files), 400, field)
    with server.client(AGENT) as agent:
        assert_error(agent.post("/api/users/appearance", json={"uuid": staff, "dashboard_bg_custom": "red"}), 403)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/users/appearance", json={"uuid": me, "dashboard_bg_custom": "red"}), 404, "User")
    with no_csrf(server, admin) as bare:
        assert_error(bare.post("/api/users/appearance", json={"uuid": me, "dashboard_bg_custom": "red"}), 403, "CSRF")
    assert settings_rows(server) == []
    assert admin.post("/api/users/appearance", json={"uuid": staff, "dashboard_bg_custom": "#123456"}).json() == OK
    with server.client(STAFF) as client:  # SysOps may set a colleague's
        assert client.get("/api/users/appearance").json()["dashboard_bg_custom"] == "#123456"


# -- dashboard widgets -----------------------------------------------------------------------------

def test_widget_preferences_follow_the_saved_layout(server):
    with server.client(AGENT) as agent, server.client(STAFF) as staff:
        default = agent.get("/api/users/dashboard-widget-preferences").json()
        assert default["hidden_ids"] == [] and "new-jobs" in default["widget_order"]
        widgets = [{"id": "sla-breaches", "visible": False, "order": 3},
                   {"id": "new-jobs", "visible": True, "order": 1}, {"id": "open-jobs", "order": 2}]
        assert agent.post("/api/users/dashboard-widget-preferences", json={"widgets": widgets}).json() == OK
        got = agent.get("/api/users/dashboard-widget-preferences").json()
        assert (got["hidden_ids"], got["widget_order"]) == (["sla-breaches"], ["new-jobs", "open-jobs", "sla-breaches"])
        assert staff.get("/api/users/dashboard-widget-preferences").json()["widget_order"] == default["widget_order"]
        assert agent.post("/api/users/dashboard-widget-preferences", json={"widgets": []}).json() == OK
        assert agent.get("/api/users/dashboard-widget-preferences").json()["widget_order"] == default["widget_order"]


def test_widget_preferences_refusals(server, admin):
    admin.post("/api/users/dashboard-widget-preferences", json={"widgets": [{"id": "a", "order": 1}]})
    rows = settings_rows(server)
    for widgets in ([{"id": "a"}, {"id": "a"}], [{"id": "a", "visible": "yes"}], [{"id": "a", "order": -1}],
                    [{"id": "../x"}], ["new-jobs"], {"id": "a"}, "nope", [{"id": "a"}] * 101):
        assert_error(admin.post("/api/users/dashboard-widget-preferences", json={"widgets": widgets}), 400, "widgets")
    with no_csrf(server, admin) as bare:
        assert_error(bare.post("/api/users/dashboard-widget-preferences", json={"widgets": []}), 403, "CSRF")
    assert settings_rows(server) == rows
    assert admin.get("/api/users/dashboard-widget-preferences").json()["widget_order"] == ["a"]


# -- avatar ----------------------------------------------------------------------------------------

def test_avatar_upload_view_and_delete(server):
    contractor = uuid_of(server, 4)
    picture = png((10, 200, 10))
    with server.client(CONTRACTOR) as client:
        r = client.post("/api/users/avatar", data={"action": "upload", "user_uuid": contractor},
                        files={"avatar": ("../me.png", picture, "image/png")})
        assert r.status_code == 200 and r.json()["data"]["file_name"] == "me.png", r.text
    with server.client(AGENT) as agent:  # a colleague sees it
        got = agent.get("/api/users/avatar", params={"user_uuid": contractor})
        assert (got.status_code, got.content, got.headers["content-type"]) == (200, picture, "image/png")
        assert_error(agent.post("/api/users/avatar", data={"action": "delete", "user_uuid": contractor}), 403)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/users/avatar", params={"user_uuid": contractor}), 404, "User not found")
        assert_error(other.post("/api/users/avatar", data={"action": "delete", "user_uuid": contractor}), 404, "User")
    with server.client(CONTRACTOR) as client:
        assert client.get("/api/users/avatar").content == picture  # own, without user_uuid
        blob = settings_rows(server)[0]["avatar"]["blob"]
        assert client.post("/api/users/avatar", data={"action": "delete", "user_uuid": contractor}).status_code == 200
        assert_error(client.get("/api/users/avatar", params={"user_uuid": contractor}), 404, "Avatar not found")
        assert server.sandbox.blobs.get(blob) is None
        assert_error(client.post("/api/users/avatar", data={"action": "delete", "user_uuid": contractor}), 404)


def test_avatar_refusals(server, admin):
    me = uuid_of(server, 1)
    for files in ({"avatar": ("a.png", PDF, "image/png")}, {"avatar": ("a.png", b"", "image/png")},
                  {"avatar": ("a.png", png()[:40], "image/png")}, None):  # [:40]: a PNG cut short
        assert_error(admin.post("/api/users/avatar", data={"action": "upload", "user_uuid": me}, files=files),
                     400, "avatar")
    assert_error(admin.post("/api/users/avatar", data={"action": "upload", "user_uuid": "nope"},
                            files={"avatar": ("a.png", png(), "image/png")}), 400, "user_uuid")
    with no_csrf(server, admin) as bare:
        assert_error(bare.post("/api/users/avatar", data={"action": "upload", "user_uuid": me},
                               files={"avatar": ("a.png", png(), "image/png")}), 403, "CSRF")
    assert settings_rows(server) == []
    assert_error(admin.get("/api/users/avatar", params={"user_uuid": me}), 404, "Avatar not found")
