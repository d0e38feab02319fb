"""PropOps Sandbox: a local, stateful fake of the PropOps REST API.

    from sandbox import Settings, create_app
    app = create_app(Settings(seed=7))        # an ASGI app; serve it with uvicorn
"""

from .app import create_app
from .settings import Settings

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "create_app"]
