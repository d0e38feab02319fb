"""Settings: one frozen object, filled from command-line options or PROPOPS_SANDBOX_* variables."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "PROPOPS_SANDBOX_"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    seed: int = 42
    data_dir: Path | None = None  # None: in memory
    scenario: str = "default"  # names or .toml paths, comma-separated: later ones win
    scenario_dir: Path | None = None  # more scenario files, beside the built-in ones
    clock_start: dt.datetime | None = None  # None: now
    jobs: int | None = None  # None: the recipe's size
    recipe: str = "default"
    log_level: str = "info"
    # A generous default; the scenarios tighten it.
    rate_limit: int = 6000
    rate_window: float = 60.0
    csrf_single_use: bool = False
    control_plane: bool = True  # the /_sandbox/ routes; off in shared deployments
    admin_key: str | None = field(default=None, repr=False)  # when set, /_sandbox/ needs X-Sandbox-Admin-Key
    key: str | None = field(default=None, repr=False)  # base64 of 32 bytes; None: data dir key file

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then PROPOPS_SANDBOX_* variables, then `overrides` (the CLI's options)."""
        from .clock import parse_instant

        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        casts = {
            "host": str,
            "port": int,
            "seed": int,
            "data_dir": Path,
            "scenario": str,
            "scenario_dir": Path,
            "clock_start": parse_instant,
            "jobs": int,
            "recipe": str,
            "log_level": str,
            "rate_limit": int,
            "rate_window": float,
            "csrf_single_use": lambda v: v.strip().lower() in ("1", "true", "yes", "on"),
            "key": str,
            "control_plane": lambda v: v.strip().lower() not in ("0", "false", "no", "off"),
            "admin_key": str,
        }
        for name, cast in casts.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                try:
                    values[name] = cast(raw)
                except ValueError as exc:
                    raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
