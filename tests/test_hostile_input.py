"""Hostile file names and path segments on every endpoint that takes a file, a file name or a path.

The endpoints come from the endpoint table itself (`sandbox.app.routes()`: rows with a ``file`` param,
params named like file/name/path, templated paths) and from the control plane's templated routes, so a
new file endpoint fails `test_every_file_endpoint_has_a_case_here` until it is covered below.

- Uploads with names like ``../../etc/passwd``, ``..\\..\\win.ini``, NUL and control characters, 5,000
  characters, ``%2e%2e%2f``, absolute paths: stored under a sanitised name (a single safe segment), served
  back intact, and nothing is written anywhere but ``<data dir>/blobs/<sha256>`` (the whole temp tree is
  checked, the server's cwd included — it runs as the real CLI in a subprocess).
- Name and path parameters given traversal values, and raw (unnormalised) traversal request targets on
  every templated path: refused with 400/404, never a file.
"""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import httpx
from conftest import ADMIN, CLOCK_START, JOB_1001
from PIL import Image
from test_cli import CLOCK, CliServer, login

from sandbox import Settings
from sandbox.app import routes
from sandbox.testing import LiveServer, free_port

BOUNDARY = "HostileBoundary7e3f"
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
NAMEISH = re.compile(r"(^|_)(file|filename|file_name|path|filepath|name)(_|$)")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


# (method, path, action, file field) -> (form fields, file bytes). Case notes take attachments as any file
# fields, which the table cannot declare (case_notes.py `_uploads`): they are listed by hand.
UNDECLARED_UPLOADS = {("POST", "/api/jobs/case-notes", "create", "attachment")}


def upload_cases(ids: dict[str, str]) -> dict[tuple, tuple[dict, bytes]]:
    return {
        ("POST", "/api/jobs/photos", "upload", "file"): ({"action": "upload", "job_uuid": JOB_1001}, png()),
        ("POST", "/api/jobs/photos", "upload", "photo"): ({"action": "upload", "job_uuid": JOB_1001}, png()),
        ("POST", "/api/jobs/documents", "upload", "file"): (
            {"action": "upload", "job_uuid": JOB_1001, "file_type_id": "1"}, PDF),
        ("POST", "/api/jobs/case-notes", "create", "attachment"): ({"job_uuid": JOB_1001, "message": "hostile"}, PDF),
        ("POST", "/api/contractors/certification", "upload", "file"): (
            {"action": "upload", "contractor_uuid": ids["contractor"], "cert_type": "Gas Safe"}, PDF),
        ("POST", "/api/agents/branch-logo", None, "logo"): ({"uuid": ids["branch"]}, png()),
        ("POST", "/api/admin/branches", "bulk_import", "csv_file"): ({"action": "bulk_import"}, b"branch_name\n"),
        ("POST", "/api/users/avatar", "upload", "avatar"): (
            {"action": "upload", "user_uuid": ids.get("user", "")}, png()),
        ("POST", "/api/users/appearance", None, "banner_file"): ({"uuid": ids.get("user", "")}, png()),
    }


# Non-file params named like a file, name or path (`NAMEISH`) -> the other params that reach the lookup.
# Names of people and places (branch_name, tenant_name…) are data, not file names: they are stored as
# given and never touch a path.
DATA_NAMES = {"branch_name", "tenant_name", "field_name", "private_contact_name", "first_name", "last_name",
              "recipient_name", "type_name", "role_name", "tag_name"}
NAME_PARAMS = {
    ("GET", "/api/contractors/certification", None, "file"): {},
    ("POST", "/api/contractors/certification", "delete", "file"): {"contractor_uuid": "{contractor}"},
    ("POST", "/api/jobs/manage", "restore_archived_file", "file_uuid"): {"uuid": JOB_1001},
    ("POST", "/api/jobs/documents", "upload", "file_type_id"): {"job_uuid": JOB_1001},
}
TRAVERSALS = [
    "../../etc/passwd", "..\\..\\..\\windows\\win.ini", "/etc/passwd", "C:\\Windows\\win.ini", "%2e%2e%2fetc%2fpasswd",
    "....//....//etc/passwd", "cert_20_5_1704873600.pdf/../../../etc/passwd", "cert_20_5_1704873600.pdf\x00.png",
    "cert_20_5_1704873600.pdf%00", "..", "~/.ssh/id_rsa", "file:///etc/passwd", "\\\\server\\share\\x.pdf", "x" * 5000,
]


def file_endpoints() -> tuple[set[tuple], set[tuple], set[str]]:
    """(uploads, name params, templated API paths) as the endpoint table declares them."""
    uploads, names = set(UNDECLARED_UPLOADS), set()
    rows = routes().rows
    for row in rows:
        for action in row.actions or (None,):
            for p in row.params:
                if p.type == "file":
                    uploads.add((row.method, row.path, action, p.name))
                elif NAMEISH.search(p.name) and p.name not in DATA_NAMES:
                    names.add((row.method, row.path, action, p.name))
    return uploads, names, {row.path for row in rows if "{" in row.path}


def test_every_file_endpoint_has_a_case_here() -> None:
    uploads, names, templated = file_endpoints()
    assert uploads == set(upload_cases({"contractor": "", "branch": ""})), "add an upload case for the new endpoint"
    assert names == set(NAME_PARAMS), "add the new file/name/path parameter to NAME_PARAMS"
    assert {"/attachment/{uuid}", "/attachment/{uuid}/thumbnail"} <= templated


def multipart(fields: dict[str, str], field: str, filename: bytes, content: bytes) -> bytes:
    """A multipart body written byte for byte (httpx would escape a hostile file name)."""
    out = b""
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="'.encode() + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + content + f"\r\n--{BOUNDARY}--\r\n".encode())
    return out


def assert_safe(name: str, why: object) -> None:
    assert name and len(name) <= 255, why
    assert not set(name) & {"/", "\\"} and not any(ord(c) < 32 or ord(c) == 127 for c in name), (name, why)
    assert not name.startswith("."), (name, why)


def stored_name(client: httpx.Client, key: tuple, body: dict) -> tuple[str | None, str]:
    """(the name the upload was stored under — None where the name is the server's own, the download URL)."""
    path = key[1]
    if path == "/api/jobs/case-notes":
        listed = client.get("/api/jobs/case-note-attachments", params={"case_note_uuid": body["note_uuid"]}).json()
        assert listed["total"] == 1, listed
        return listed["data"][0]["file_name"], listed["data"][0]["url"]
    if path == "/api/contractors/certification":
        return body["data"]["original_name"], body["data"]["url"]
    if path == "/api/agents/branch-logo":
        return None, body["logo_url"]
    return body["data"]["file_name"], body["data"]["url"]


def test_hostile_upload_names_are_sanitised_and_nothing_lands_outside_the_blob_store(tmp_path: Path) -> None:
    data, cwd = tmp_path / "deep" / "er" / "data", tmp_path / "cwd"
    cwd.mkdir()
    hostile = [
        b"../../etc/passwd", b"..\\..\\..\\win.ini", b"..\\\\..\\\\win.ini", b"C:\\Windows\\win.ini",
        b"../../../outside/evil.png", f"{tmp_path}/abs/evil.png".encode(), b"evil\x00.png", b"a\x01\x1b\x7fb.png",
        b"A" * 5000 + b".png", b"%2e%2e%2f%2e%2e%2fetc%2fpasswd", b"..", b".htaccess", b"...", b"x/..",
    ]
    port = free_port()
    with CliServer(cwd, port, "--port", str(port), "--data-dir", str(data), "--clock-start", CLOCK,
                   "--log-level", "warning") as server:
        token = login(server.url)
        with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
            client.headers["X-CSRF-Token"] = client.get("/api/security/csrf-token").json()["data"]["token"]
            contractors = client.get("/api/contractors/list", params={"action": "list", "limit": 200}).json()["data"]
            branches = client.get("/api/admin/branches", params={"action": "list"}).json()["data"]
            ids = {"contractor": next(c["uuid"] for c in contractors if c["ID"] == 20),
                   "branch": next(b["uuid"] for b in branches if b["ID"] == 1),
                   "user": client.get("/api/users/profile").json()["data"]["uuid"]}
            for key, (fields, content) in upload_cases(ids).items():
                for name in hostile:
                    why = (key, name[:60])
                    r = client.post(key[1], content=multipart(fields, key[3], name, content),
                                    headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
                    assert r.status_code in (200, 201, 400), (why, r.status_code, r.text)
                    body = r.json()
                    assert body["success"] is (r.status_code != 400), (why, body)
                    if r.status_code == 400 or key[3] == "csv_file":
                        continue  # refused, or a CSV import: its name is not kept
                    name_kept, url = stored_name(client, key, body)
                    if name_kept is not None:
                        assert_safe(name_kept, why)
                    got = client.get(url)
                    assert got.status_code == 200, (why, got.text[:200])
                    assert "photos" in key[1] or got.content == content, why  # (photos are compressed on ingest)
                    disposition = got.headers.get("content-disposition", "")
                    plain = re.search(r'filename="([^"]*)"', disposition)
                    assert plain is None or not set(plain.group(1)) & {"/", "\\"}, (why, disposition)
        server.stop()
        assert "Traceback" not in server.stderr, server.stderr[-3000:]

    # Nothing was written anywhere but the data file, the key and content-addressed blobs.
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if not p.is_dir())
    unexpected = [p for p in written if p not in ("deep/er/data/propops.json", "deep/er/data/sandbox.key")
                  and not re.fullmatch(r"deep/er/data/blobs/[0-9a-f]{64}", p)]
    assert unexpected == [], unexpected
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir()) == ["blobs", "cwd", "data", "deep", "er"]


def raw_request(port: int, method: str, target: bytes, token: str) -> tuple[int, bytes]:
    """A request with the target exactly as given (httpx would normalise away the dot segments)."""
    request = (method.encode() + b" " + target + b" HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer "
               + token.encode() + b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_traversal_in_name_params_and_path_segments_is_refused(tmp_path: Path) -> None:
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START, data_dir=tmp_path / "data")) as live:
        contractor = live.sandbox.store.raw("contractors", 20)["uuid"]
        with live.client(ADMIN) as client:
            for (method, path, action, param), base in NAME_PARAMS.items():
                kind = next(p.type for r in routes().rows if (r.method, r.path) == (method, path)
                            and action in (r.actions or (None,)) for p in r.params if p.name == param)
                for value in TRAVERSALS:
                    fields = {**{k: v.format(contractor=contractor) for k, v in base.items()}, param: value}
                    if action:
                        fields["action"] = action
                    r = client.request(method, path, params=fields if method == "GET" else None,
                                       json=fields if method != "GET" else None)
                    why = (method, path, action, param, value[:50])
                    assert r.status_code in (400, 404), (why, r.status_code, r.text[:200])
                    assert r.json()["success"] is False and b"root:" not in r.content, why
                    if kind != "string" or r.status_code == 400:
                        assert param in r.json()["error"], (why, r.text)  # the refusal names the parameter
        token = live.login()
        templated = sorted({(r.method, r.path) for r in routes().rows if "{" in r.path})
        control = sorted((method, r.path) for r in live.app.other.routes if "{" in getattr(r, "path", "")
                         for method in r.methods - {"HEAD"})
        assert templated and control
        segments = [b"..", b"../../../etc/passwd", b"..%2f..%2f..%2fetc%2fpasswd", b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                    b"%2e%2e", b"..;", b"..\\..\\etc\\passwd", b"%00", b"x%00.pdf", b"....//....//etc/passwd",
                    b"%252e%252e%252fetc", b"/etc/passwd", b"A" * 4000]
        for method, path in templated + control:
            for segment in segments:
                target = re.sub(rb"\{\w+\}", lambda _m, s=segment: s, path.encode())
                status, answer = raw_request(live.port, method, target, token)
                assert status in (400, 404), (method, target[:80], answer[:300])
                assert b"root:" not in answer and b"[fonts]" not in answer, target[:80]


def test_a_stored_name_with_control_characters_cannot_break_a_download_header(tmp_path: Path) -> None:
    """Was a bug: case-note attachments kept NUL/CR/LF from the upload's name, and /attachment/<uuid> then
    built an invalid Content-Disposition header: the server dropped the connection. Names from older data
    files may still hold them, so the header is made safe on the way out too."""
    evil = "a\r\nSet-Cookie: stolen=1\x00\x7f.pdf"
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live, live.client(ADMIN) as client:
        store = live.sandbox.store
        for table in ("case_note_attachments", "photos", "documents"):
            row = store.select(table, lambda r: r["org_id"] == 1 and not r.get("archived"))[0]
            store.update(table, row["ID"], {"file_name": evil})
            urls = [f"/attachment/{row['uuid']}"]
            if table == "documents":
                urls.append(f"/api/jobs/documents?action=download&uuid={row['uuid']}")
            for url in urls:
                got = client.get(url)
                assert got.status_code == 200, (table, url, got.text[:200])
                disposition = got.headers["content-disposition"]
                assert not any(ord(c) < 32 or ord(c) == 127 for c in disposition), disposition
                assert "Set-Cookie" not in got.headers and "stolen" not in got.cookies, got.headers
                assert "filename*=UTF-8''a%0D%0ASet-Cookie" in disposition, disposition  # the real name, encoded
