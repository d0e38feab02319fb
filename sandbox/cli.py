"""``propops-sandbox`` (also ``python -m sandbox``).

    propops-sandbox [serve] [--host H] [--port P] [--seed N] [--data-dir D] [--scenario S]
                            [--clock-start ISO] [--jobs N] [--log-level L]
    propops-sandbox endpoints [--json]
    propops-sandbox scenarios [--json] [--scenario-dir D]
    propops-sandbox bench [--json] [--quick] [--check]

Every option has a PROPOPS_SANDBOX_* variable; an option given on the command line wins. A bad option
or an unusable data dir is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import NoReturn

USAGE_ERROR = 2
_LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"propops-sandbox: error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="propops-sandbox", description="A local, stateful fake of the PropOps REST API.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    serve = commands.add_parser("serve", help="serve the sandbox (the default command)")
    serve.add_argument("--host", help="interface to listen on (PROPOPS_SANDBOX_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (PROPOPS_SANDBOX_PORT, default 8080)")
    serve.add_argument("--seed", type=int, help="dataset seed (PROPOPS_SANDBOX_SEED, default 42)")
    serve.add_argument("--data-dir", type=Path,
                       help="keep state in this directory (PROPOPS_SANDBOX_DATA_DIR; default: in memory)")
    serve.add_argument("--scenario", help="scenario names or .toml files, comma-separated (PROPOPS_SANDBOX_SCENARIO)")
    serve.add_argument("--scenario-dir", type=Path,
                       help="a folder of more scenario files (PROPOPS_SANDBOX_SCENARIO_DIR)")
    serve.add_argument("--clock-start", help="ISO time the seeded data is anchored to (default: now)")
    serve.add_argument("--jobs", type=int, help="number of jobs in the main organisation (default 200)")
    serve.add_argument("--no-control-plane", action="store_true",
                       help="serve no /_sandbox/ routes (PROPOPS_SANDBOX_CONTROL_PLANE=0)")
    serve.add_argument("--log-level", choices=_LOG_LEVELS,
                       help="log level (PROPOPS_SANDBOX_LOG_LEVEL, default info)")
    listing = commands.add_parser("endpoints", help="list every implemented endpoint")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench = commands.add_parser("bench", help="measure the sandbox against its performance budgets")
    from .bench import add_arguments as bench_arguments  # the bench module imports only the stdlib at load

    bench_arguments(bench)  # --json, --quick, --check, --generator {auto,wrk,python}
    catalogue = commands.add_parser("scenarios", help="list the scenarios with their descriptions")
    catalogue.add_argument("--scenario-dir", type=Path, help="a folder of more scenario files")
    catalogue.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help")):
        args.insert(0, "serve")
    ns = _parser().parse_args(args)
    if ns.command == "endpoints":
        return _endpoints(ns.json)
    if ns.command == "bench":
        from .bench import main as bench_main

        raise SystemExit(bench_main(ns))
    if ns.command == "scenarios":
        return _scenarios(ns.scenario_dir, ns.json)
    return _serve(ns)


def _endpoints(as_json: bool) -> None:
    from .app import routes

    rows = routes().describe()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        actions = ",".join(row["actions"]) or "-"
        csrf = "csrf" if row["csrf"] else "-"
        print(f"{row['method']:<7} {row['path']:<36} {actions:<28} {row['permission'] or '-':<40} {csrf}")


def _scenarios(extra: Path | None, as_json: bool) -> None:
    from .scenarios import Catalogue, ScenarioError

    try:
        rows = Catalogue(extra).describe()
    except ScenarioError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['name']:<18} {row['description']}")


def _serve(ns: argparse.Namespace) -> None:
    from .clock import parse_instant
    from .runtime import StartupError
    from .settings import Settings

    try:
        clock_start = parse_instant(ns.clock_start) if ns.clock_start else None
    except ValueError:
        fail(f"--clock-start {ns.clock_start!r} is not an ISO 8601 time")
    if ns.port is not None and not 0 <= ns.port <= 65535:
        fail(f"--port {ns.port} is not a port number")
    try:
        settings = Settings.from_env(
            host=ns.host, port=ns.port, seed=ns.seed, data_dir=ns.data_dir, scenario=ns.scenario,
            scenario_dir=ns.scenario_dir, control_plane=False if ns.no_control_plane else None,
            clock_start=clock_start, jobs=ns.jobs, log_level=ns.log_level,
        )
    except ValueError as exc:
        fail(str(exc))
    # The range check above sees only --port; PROPOPS_SANDBOX_PORT=99999 used to slip through (and
    # uvicorn then listened on 99999 % 65536 while announcing 99999).
    if not 0 <= settings.port <= 65535:
        fail(f"PROPOPS_SANDBOX_PORT={settings.port} is not a port number")
    # argparse checks --log-level's choices; PROPOPS_SANDBOX_LOG_LEVEL=loud used to end in a traceback
    # (and uvicorn knows only lower-case names, so INFO did too).
    settings = dataclasses.replace(settings, log_level=settings.log_level.lower())
    if settings.log_level not in _LOG_LEVELS:
        fail(f"PROPOPS_SANDBOX_LOG_LEVEL={settings.log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")

    import uvicorn

    from .app import create_app

    try:
        app = create_app(settings)
    except StartupError as exc:
        fail(str(exc))
    base = f"http://{settings.host}:{settings.port}"
    print(f"PropOps Sandbox on {base}/api/  (seed {settings.seed}, scenario {settings.scenario}, "
          f"{'data in ' + str(settings.data_dir) if settings.data_dir else 'in memory'})")
    print("Demo accounts (password 'sandbox'):")
    for account in app.sandbox.demo_accounts():
        print(f"  {account['email']:<34} {account['account_type']:<11} {account['role']}")
    sys.stdout.flush()
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            lifespan="on")
    server = uvicorn.Server(config)
    interrupted = False
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C after its graceful shutdown; without this it ended in a traceback.
        interrupted = True
    except SystemExit:
        # uvicorn exits 3 when it cannot bind; report that as the one-line usage error below instead.
        if server.started:
            raise
    finally:
        app.sandbox.store.flush()
    if not server.started and not interrupted:
        fail(f"could not listen on {settings.host}:{settings.port}")
