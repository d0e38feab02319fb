"""`create_app(settings)`: the one place where the resource groups are listed and assembled.

Requests under /api/ go straight to `ApiApp` (one string test, then dict lookups); everything else —
the control plane under /_sandbox/ — is a small Starlette app, which also runs start-up and shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from . import control, openapi
from .api import ApiApp
from .endpoints import Routes
from .resources import (
    admin,
    agent_branches,
    agents,
    amendments,
    analytics,
    approvals,
    attachments,
    auth,
    branch_import,
    branches,
    case_notes,
    certifications,
    contractors,
    documents,
    financial,
    gdpr,
    job_actions,
    job_history,
    jobs,
    messaging,
    notifications,
    password_reset,
    photos,
    pins,
    recalls,
    reference,
    remedials,
    search,
    security,
    sla,
    system,
    system_settings,
    tenants,
    user_admin,
    user_settings,
    users,
)
from .runtime import Sandbox
from .settings import Settings

GROUPS = (auth, security, users, system, jobs, job_history, job_actions, reference, case_notes, photos, documents,
          recalls, amendments, approvals, pins, remedials, sla, attachments, contractors, certifications, agents,
          agent_branches, branches, branch_import, tenants, user_settings, user_admin, notifications, search,
          system_settings, admin, password_reset, financial, messaging, gdpr, analytics)


def routes() -> Routes:
    return Routes(row for group in GROUPS for row in group.ENDPOINTS)


class SandboxApp:
    """The ASGI application. `.sandbox` is the live state (for the pytest plugin and control plane)."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.routes = routes()
        self.api = ApiApp(sandbox, self.routes)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            sandbox.store.flush()  # a graceful stop loses nothing

        self.other = Starlette(routes=control.routes(sandbox, self.routes) + openapi.routes(self.routes),
                               lifespan=lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/", "/attachment/")):
            await self.api(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def create_app(settings: Settings | None = None) -> SandboxApp:
    return SandboxApp(Sandbox(settings or Settings()))
