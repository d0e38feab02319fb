"""The running sandbox: settings, clock, store, auth and limiter, assembled once at start-up.

Start-up either loads the data dir (checking the key opens it) or seeds a fresh dataset from
fixtures/ and, with a data dir, writes it to disk before the first request.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import logging
import os
import pickle
import tempfile
import threading
import time
import weakref
from typing import Any

from .auth import Auth
from .blobs import Blobs
from .clock import Clock, iso
from .crypto import Cipher, KeyError_, load_or_create_key
from .faults import Trouble
from .journal import Journal
from .limiter import Limiter
from .scenarios import Catalogue, ScenarioError
from .settings import Settings
from .storage import StorageError
from .store import Store

log = logging.getLogger("sandbox")
_KEY_CHECK = "propops-sandbox key check"


IN_MEMORY = 32 * 2**20  # captured states bigger than this wait in a temporary file, not in memory
REBUILD_JOBS = 20_000  # a seeded baseline with more jobs is rebuilt on reset, not kept (see __init__)


class StartupError(RuntimeError):
    """A reason the sandbox cannot start, said in one line."""


class _Spilled:
    """A captured state too big to hold beside the live data (100,000 jobs: ~230 MB): its bytes wait in
    an unlinked temporary file, so the reset baseline costs disk, not resident memory. The file is
    written by a thread (os.write lets go of the GIL), so start-up does not wait for the disk."""

    def __init__(self, blob: bytes):
        fd, path = tempfile.mkstemp(prefix="propops-sandbox-state-")
        os.unlink(path)
        self.size = len(blob)
        self._fd = fd
        weakref.finalize(self, os.close, fd)
        self._writer = threading.Thread(target=self._write, args=(blob,), name="sandbox-spill", daemon=True)
        self._writer.start()

    def _write(self, blob: bytes) -> None:
        view = memoryview(blob)
        while view:
            view = view[os.write(self._fd, view):]

    def read(self) -> bytes:
        self._writer.join()
        return os.pread(self._fd, self.size, 0)


def _trim() -> None:
    """Give back to the system the memory a big build freed (glibc keeps it otherwise: ~30 MB at
    100,000 jobs). Without glibc this does nothing."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def _keep(blob: bytes) -> bytes | _Spilled:
    return blob if len(blob) <= IN_MEMORY else _Spilled(blob)


def _load(kept: bytes | _Spilled) -> bytes:
    return kept if isinstance(kept, bytes) else kept.read()


class Sandbox:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.started = time.monotonic()
        try:  # scenario files are checked before anything is read or written
            self.catalogue = Catalogue(settings.scenario_dir)
            self.catalogue.resolve(settings.scenario)
        except ScenarioError as exc:
            raise StartupError(str(exc)) from None
        try:
            key = load_or_create_key(settings.data_dir, settings.key)
            self.store = Store(Cipher(key), settings.data_dir, settings.seed)
        except (KeyError_, StorageError) as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(f"data dir {settings.data_dir}: {exc.strerror or exc}") from None
        meta = self.store.meta()
        if meta and not self.store.cipher.check(meta.get("key_check", "")):
            raise StartupError(
                f"the encryption key does not open the data in {settings.data_dir} "
                "(set PROPOPS_SANDBOX_KEY to the key it was created with, or use a new data dir)"
            )
        # A data dir keeps the seed it was made with: tokens and new uuids derive from it, whatever
        # --seed says on a later start.
        seed = meta.get("seed", settings.seed) if meta else settings.seed
        if seed != settings.seed:
            log.warning("data dir %s was seeded with %s; ignoring --seed %s", settings.data_dir, seed, settings.seed)
        self.store.seed = seed
        self.clock = Clock(settings.clock_start)
        self.auth = Auth(self.store, self.clock, seed, csrf_single_use=settings.csrf_single_use)
        clock_seconds = lambda: self.clock.now().timestamp()  # noqa: E731 - the limiter's and storms' time
        self.limiter = Limiter(settings.rate_limit, settings.rate_window, now=clock_seconds)
        self.blobs = Blobs(settings.data_dir)
        if not meta:
            self._seed()
        self.trouble = Trouble(self.catalogue, self.store, self.limiter, seed, settings.scenario, now=clock_seconds)
        self.journal = Journal()
        self.snapshots: dict[str, tuple[str, tuple[bytes | _Spilled | None, bytes]]] = {}  # name -> (created_at, state)
        # A big freshly seeded dataset is built again on reset rather than kept: keeping it cost seconds
        # of start-up and, restored from its copy, twice the memory of a fresh build.
        self._baseline = self._capture(rebuild=not meta and self.store.count("jobs") > REBUILD_JOBS)
        if self._baseline[0] is None:
            _trim()

    # -- baseline and snapshots (control plane) ------------------------------------------------------

    def _capture(self, *, rebuild: bool = False) -> tuple[bytes | _Spilled | None, bytes]:
        """The state to come back to: the store's snapshot (None: rebuild from the seed), and the rest."""
        clock = (self.clock.now().isoformat(), self.clock.frozen)
        data = None if rebuild else _keep(self.store.snapshot())
        return data, pickle.dumps((self.blobs.snapshot(), clock, self.trouble.spec))

    def _restore(self, state: tuple[bytes | _Spilled | None, bytes], *, clock_to_start: bool = False) -> None:
        blobs, (now, frozen), (scenario, files) = pickle.loads(state[1])
        if state[0] is None:
            self.store.clear()
            self._seed()
            _trim()
        else:
            self.store.restore(_load(state[0]))
        self.blobs.restore(blobs)
        self.auth.reindex()
        if clock_to_start:
            self.clock.reset()
        else:
            self.clock.set(dt.datetime.fromisoformat(now), frozen=frozen)
        self.limiter.reset()
        self.trouble.activate(scenario, files=files)

    def reset(self) -> None:
        """Back to the seeded baseline: data, tokens, limiter, journal, clock and the start scenario."""
        self._restore(self._baseline, clock_to_start=True)
        self.journal.clear()
        self.store.mark_dirty()

    def save_snapshot(self, name: str) -> None:
        self.snapshots[name] = (self.clock.iso(), self._capture())

    def restore_snapshot(self, name: str) -> None:
        self._restore(self.snapshots[name][1])
        self.store.mark_dirty()

    def _seed(self) -> None:
        from . import seed as seeding  # Faker is imported only when a dataset is built

        s = self.settings
        try:
            dataset = seeding.build(seed=s.seed, clock_start=self.clock.start, jobs=s.jobs, recipe=s.recipe)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        for table, rows in dataset.items():
            if table == "users":
                rows = [self.auth.prepare_user(r) for r in rows]
            self.store.insert_many(table, rows)
        self.store.set_meta(
            key_check=self.store.cipher.encrypt(_KEY_CHECK),
            seed=s.seed,
            recipe=s.recipe,
            clock_start=iso(self.clock.start),
            jobs=len(dataset.get("jobs", ())),
        )
        try:
            self.store.flush()
        except OSError as exc:
            raise StartupError(f"cannot write to data dir {s.data_dir}: {exc.strerror or exc}") from None

    def demo_accounts(self) -> list[dict[str, Any]]:
        types = {r["ID"]: r["name"] for r in self.store.select("account_types")}
        out = []
        for row in self.store.select("users", lambda r: r["ID"] <= 6):
            user = self.store.reveal("users", row)
            out.append({"email": user["email"], "account_type": types[user["account_type_id"]], "role": user["role"],
                        "user_id": user["ID"], "org_id": user["org_id"]})
        return out

    def uptime(self) -> int:
        return int(time.monotonic() - self.started)
