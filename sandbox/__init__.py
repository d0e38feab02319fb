"""PropOps Sandbox: a local, stateful fake of the PropOps REST API.

    from sandbox import Sandbox
    with Sandbox(seed=7, scenario="flaky") as sb:       # a live server on a free port
        client = sb.client("staff")                     # httpx, signed in, CSRF handled

    from sandbox import Settings, create_app
    app = create_app(Settings(seed=7))                  # or just the ASGI app, for your own server
"""

from typing import Any

from ._version import __version__
from .app import create_app
from .settings import Settings

__all__ = ["InProcessSandbox", "Sandbox", "SandboxError", "Settings", "__version__", "create_app"]

_HANDLE = ("InProcessSandbox", "Sandbox", "SandboxError")


def __getattr__(name: str) -> Any:
    # The handle pulls in uvicorn and httpx; load it only when someone asks for it.
    if name in _HANDLE:
        from . import handle

        return getattr(handle, name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
