"""`stackyard devcloud` operations: up, down, status, reset, with database snapshots for fast restarts."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackyard.devcloud import backing, database, install, openstack, schema, swift
from stackyard.devcloud.components import (
    PROCESSES,
    Component,
    databases,
    needs_broker,
    ordered,
)
from stackyard.devcloud.context import CloudContext, Layout, Ports, Secrets
from stackyard.devcloud.process import (
    ProcessInfo,
    info,
    is_alive,
    log_tail,
    read_pid,
    spawn,
    started_at,
    stop,
    wait_healthy,
)
from stackyard.devcloud.spec import ServiceSpec
from stackyard.devcloud.state import DevcloudState, load_or_create_secrets, load_secrets
from stackyard.errors import DevcloudError, ServiceStartError

Report = Callable[[str], None]
EXTERNAL_DB_PREFIX = "stackyard_devcloud_"
LOCK_WAIT_SECONDS = 900.0
BACKING = ("memcached", "mariadb", "rabbitmq")
SNAPSHOT_FILES = ("etc/keystone/fernet-keys", "etc/keystone/credential-keys", "data/glance", "data/nova")


@dataclass(frozen=True)
class UpOptions:
    components: frozenset[Component]
    db_url: str | None = None
    broker_url: str | None = None
    use_snapshot: bool = True


@dataclass(frozen=True)
class UpResult:
    started: list[str]
    already_running: list[str]
    restored_snapshot: bool
    saved_snapshot: bool
    seconds: float


def default_root() -> Path:
    configured = os.environ.get("STACKYARD_DEVCLOUD_DIR")
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "stackyard" / "devcloud"


class Devcloud:
    """One devcloud rooted at a directory; every process it starts is tracked there by PID."""

    def __init__(self, layout: Layout, ports: Ports | None = None, report: Report | None = None) -> None:
        self.layout = layout
        self.ports = ports or Ports()
        self.report: Report = report or (lambda _msg: None)

    # -- context ---------------------------------------------------------------------------

    def _context(self, state: DevcloudState, secrets: Secrets) -> CloudContext:
        return CloudContext(
            layout=self.layout,
            secrets=secrets,
            db_base_url=state.db_base_url,
            transport_url=state.transport_url,
            ports=self.ports,
            db_prefix=state.db_prefix,
        )

    def all_specs(self, ctx: CloudContext) -> dict[str, ServiceSpec]:
        specs = {
            "memcached": backing.memcached_spec(ctx),
            "mariadb": backing.mariadb_spec(ctx),
            "rabbitmq": backing.rabbitmq_spec(ctx),
            **openstack.openstack_services(ctx),
        }
        specs.update({spec.name: spec for spec in swift.swift_services(ctx)})
        return specs

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with (self.layout.root / ".lock").open("w") as handle:
            # Another command on the same devcloud (a `down` finishing, a second test run) is
            # waited for rather than failed on; only a long-stuck one is an error.
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            waiting_reported = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DevcloudError(
                            f"another stackyard devcloud command has held {self.layout.root} "
                            f"for over {LOCK_WAIT_SECONDS:.0f} s"
                        ) from None
                    if not waiting_reported:
                        self.report("waiting for another devcloud command on this directory to finish")
                        waiting_reported = True
                    time.sleep(0.5)
            yield

    # -- up ----------------------------------------------------------------------------------

    def up(self, options: UpOptions) -> UpResult:
        with self._locked():
            return self._up(options)

    def _plan(self, options: UpOptions) -> list[str]:
        names = ["memcached"]
        if options.db_url is None:
            names.append("mariadb")
        if needs_broker(options.components) and options.broker_url is None:
            names.append("rabbitmq")
        for component in ordered(options.components):
            names.extend(PROCESSES[component])
        return names

    def _up(self, options: UpOptions) -> UpResult:
        began = time.monotonic()
        install.ensure_venv(self.layout, self.report)
        # qemu-img is not the devcloud's own need: installing it here makes `./dev up` the one setup
        # step for exports that convert disk formats.
        executables = ["memcached", "mariadb", "mariadb-dump", "qemu-img"]
        if options.db_url is None:
            executables.append("mariadbd")
        if needs_broker(options.components) and options.broker_url is None:
            executables.append("rabbitmq-server")
        install.ensure_debian_packages(executables, self.report)

        secrets = load_or_create_secrets(self.layout)
        previous = DevcloudState.load(self.layout)
        state = self._state_for(options, previous, secrets)
        ctx = self._context(state, secrets)
        specs = self.all_specs(ctx)
        plan = self._plan(options)

        running = [name for name in plan if self._is_running(name)]
        self._write_configs(ctx, options)
        stale = self._stale(ctx, running)
        complete = set(previous.components) >= {c.value for c in options.components}
        if len(running) == len(plan) and complete and not stale:
            self.report("devcloud already up: " + ", ".join(running))
            return UpResult([], running, False, False, time.monotonic() - began)

        started: list[str] = []
        try:
            if stale:
                self.report("config changed; restarting " + ", ".join(stale))
                for name in reversed(stale):
                    stop(self.layout, name, specs[name].stop_timeout)
            for name in ("memcached", "mariadb", "rabbitmq"):
                if name in plan:
                    if name == "mariadb":
                        fresh = backing.init_mariadb(ctx)
                        self._start(specs[name], started)
                        if fresh:
                            backing.grant_private_user(ctx)
                    else:
                        self._start(specs[name], started)
            if "rabbitmq" in plan:
                backing.cap_notification_queues(ctx)
            restored, synced_now = self._prepare_databases(ctx, state, options)
            state.components = sorted({*state.components, *(c.value for c in options.components)})
            state.processes = plan
            state.save(self.layout)
            self._start_openstack(ctx, state, specs, plan, options, started)
            saved = False
            if synced_now or not self._snapshot_meta_path().exists():
                self._save_snapshot(ctx, state)
                saved = True
        except BaseException:
            self.report("start failed; stopping what this run started")
            for name in reversed(started):
                stop(self.layout, name, specs[name].stop_timeout)
            raise
        already = [n for n in running if n not in started]
        return UpResult(started, already, restored, saved, time.monotonic() - began)

    def _state_for(self, options: UpOptions, previous: DevcloudState, secrets: Secrets) -> DevcloudState:
        state = DevcloudState(
            components=list(previous.components),
            synced_databases=list(previous.synced_databases),
        )
        probe_ctx = CloudContext(self.layout, secrets, "", "", self.ports)
        if options.db_url is None:
            state.db_base_url = backing.private_db_base_url(probe_ctx)
            state.db_prefix = ""
            state.is_private_db = True
        else:
            state.db_base_url = options.db_url.rstrip("/")
            state.db_prefix = EXTERNAL_DB_PREFIX
            state.is_private_db = False
        if (state.db_base_url, state.db_prefix) != (previous.db_base_url, previous.db_prefix):
            state.synced_databases = []
        if not needs_broker(options.components):
            # NOTE: oslo.messaging's fake driver lets the APIs start without any broker.
            state.transport_url = "fake://stackyard:none@127.0.0.1:1/"
        elif options.broker_url is None:
            state.transport_url = backing.private_transport_url(probe_ctx)
        else:
            state.transport_url = options.broker_url
        return state

    def _write_configs(self, ctx: CloudContext, options: UpOptions) -> None:
        for directory in (self.layout.etc, self.layout.run, self.layout.logs, self.layout.data):
            directory.mkdir(parents=True, exist_ok=True)
        openstack.write_configs(ctx)
        if Component.OBJECT_STORE in options.components:
            swift.write_swift_config(ctx)
        if needs_broker(options.components) and options.broker_url is None:
            backing.write_rabbitmq_config(ctx)

    def _stale(self, ctx: CloudContext, running: list[str]) -> list[str]:
        """Running processes started before a config file they read last changed (an upgrade of
        stackyard, or another `up` that wrote it): `up` restarts them so they read it again."""
        stale: list[str] = []
        for name in running:
            pid = read_pid(self.layout, name)
            began = started_at(pid) if pid is not None else None
            if began is None:
                continue
            # started_at is known to within a second (the boot time is whole seconds).
            if any(
                path.exists() and path.stat().st_mtime > began + 1.0
                for path in openstack.config_files(ctx, name)
            ):
                stale.append(name)
        return stale

    def _is_running(self, name: str) -> bool:
        pid = read_pid(self.layout, name)
        return pid is not None and is_alive(pid)

    def _start(self, spec: ServiceSpec, started: list[str]) -> None:
        for entry in self._spawn_all([spec], started):
            self._await(entry)

    @property
    def ports_host(self) -> str:
        return "127.0.0.1"

    # -- databases and snapshots ---------------------------------------------------------------

    def _db_server(self, ctx: CloudContext) -> database.DbServer:
        return database.DbServer.from_url(ctx.db_base_url)

    def _snapshot_meta_path(self) -> Path:
        return self.layout.snapshot / "meta.json"

    def _snapshot_meta(self) -> dict[str, Any] | None:
        path = self._snapshot_meta_path()
        if not path.exists():
            return None
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded

    def _prepare_databases(
        self, ctx: CloudContext, state: DevcloudState, options: UpOptions
    ) -> tuple[bool, bool]:
        """Restore the snapshot into an empty server, then sync what is still missing."""
        server = self._db_server(ctx)
        wanted = databases(options.components)
        present = database.existing_databases(ctx, server, wanted)
        state.synced_databases = [d for d in state.synced_databases if d in present]
        restored = False
        meta = self._snapshot_meta()
        if options.use_snapshot and not present and meta is not None:
            self.report("restoring the database snapshot")
            database.restore(server, self.layout.snapshot / "databases.sql")
            self._restore_files()
            state.synced_databases = list(meta["databases"])
            state.bootstrapped = dict(meta.get("bootstrapped", {}))
            restored = True
        missing = [d for d in wanted if d not in state.synced_databases]
        database.create_databases(ctx, server, wanted)
        if missing:
            self.report("creating schemas: " + ", ".join(missing))
            schema.sync_schemas(self.layout, ctx, missing)
            state.synced_databases = sorted({*state.synced_databases, *missing})
        state.save(self.layout)
        return restored, bool(missing)

    def _save_snapshot(self, ctx: CloudContext, state: DevcloudState) -> None:
        snap = self.layout.snapshot
        snap.mkdir(parents=True, exist_ok=True)
        database.dump(ctx, self._db_server(ctx), state.synced_databases, snap / "databases.sql")
        with tarfile.open(snap / "files.tar.gz", "w:gz") as archive:
            for relative in SNAPSHOT_FILES:
                path = self.layout.root / relative
                if path.exists():
                    archive.add(path, arcname=relative, filter=_skip_runtime)
        meta = {
            "databases": state.synced_databases,
            "components": state.components,
            "bootstrapped": state.bootstrapped,
        }
        self._snapshot_meta_path().write_text(json.dumps(meta, indent=2))
        self.report(f"saved snapshot of {', '.join(state.synced_databases)}")

    def _restore_files(self) -> None:
        archive_path = self.layout.snapshot / "files.tar.gz"
        if archive_path.exists():
            with tarfile.open(archive_path) as archive:
                archive.extractall(self.layout.root, filter="data")

    # -- OpenStack processes -------------------------------------------------------------------

    def _start_openstack(
        self,
        ctx: CloudContext,
        state: DevcloudState,
        specs: dict[str, ServiceSpec],
        plan: list[str],
        options: UpOptions,
        started: list[str],
    ) -> None:
        """APIs and cinder workers boot at once (they need Keystone only for requests); the identity
        bootstrap runs as soon as Keystone answers, then nova's workers; nova-compute follows the APIs."""
        # nova-compute registers its resource provider with Placement as it starts, so it alone
        # waits for the APIs; every other worker needs only the database and the broker.
        # NOTE: nova-conductor and nova-scheduler authenticate as they start and exit on a 401,
        # so they wait for the identity bootstrap that creates their service user.
        late = [specs[n] for n in plan if n == "nova-compute"]
        after_identity = [specs[n] for n in plan if n in ("nova-conductor", "nova-scheduler")]
        first = [specs[n] for n in plan if n not in BACKING and specs[n] not in late + after_identity]
        pending = self._spawn_all(first, started)
        keystone = next((p for p in pending if p[0].name == "keystone"), None)
        if keystone is not None:  # None when Keystone was already running
            self._await(keystone)
        self._bootstrap(ctx, state, "identity", options)
        pending += self._spawn_all(after_identity, started)
        for entry in pending:
            if entry is not keystone:
                self._await(entry)
        since = self._db_now(ctx) if Component.COMPUTE in options.components else ""
        for entry in self._spawn_all(late, started):
            self._await(entry)
        if Component.COMPUTE in options.components:
            self._wait_compute_ready(ctx, since)
        self._bootstrap(ctx, state, "resources", options)

    def _spawn_all(
        self, specs: list[ServiceSpec], started: list[str]
    ) -> list[tuple[ServiceSpec, int, float]]:
        pending: list[tuple[ServiceSpec, int, float]] = []
        for spec in specs:
            if self._is_running(spec.name):
                continue
            began = time.monotonic()
            pid = spawn(self.layout, spec, self.ports_host)
            started.append(spec.name)
            pending.append((spec, pid, began))
        return pending

    def _await(self, entry: tuple[ServiceSpec, int, float]) -> None:
        spec, pid, began = entry
        wait_healthy(self.layout, spec, self.ports_host, pid, began)
        self.report(f"{spec.name} healthy (pid {pid}, {time.monotonic() - began:.1f} s)")

    def _bootstrap(self, ctx: CloudContext, state: DevcloudState, phase: str, options: UpOptions) -> None:
        """Run a bootstrap phase unless the data already holds it (same endpoints, same secrets)."""
        endpoints = {
            "compute": ctx.url(ctx.ports.nova, "/v2.1"),
            "placement": ctx.url(ctx.ports.placement),
            "network": ctx.url(ctx.ports.neutron),
            "image": ctx.url(ctx.ports.glance),
            "block-storage": ctx.url(ctx.ports.cinder, "/v3/%(project_id)s"),
            "volumev3": ctx.url(ctx.ports.cinder, "/v3/%(project_id)s"),
            "object-store": ctx.url(ctx.ports.swift_proxy, "/v1/AUTH_%(project_id)s"),
        }
        document = {
            "phase": phase,
            "auth_url": ctx.keystone_url,
            "admin_password": ctx.secrets.admin_password,
            "demo_password": ctx.secrets.demo_password,
            "service_password": ctx.secrets.service_password,
            "region": ctx.region,
            "endpoints": endpoints,
        }
        fingerprint = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
        wanted = sorted(c.value for c in options.components)
        done = state.bootstrapped.get(phase)
        if done is not None and done["fingerprint"] == fingerprint and set(wanted) <= set(done["components"]):
            return
        document["components"] = wanted
        began = time.monotonic()
        result = subprocess.run(
            [str(self.layout.python), "-m", "stackyard_osplugin.bootstrap"],
            input=json.dumps(document),
            capture_output=True,
            text=True,
            cwd=self.layout.root,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.splitlines()[-25:])
            raise DevcloudError(f"bootstrap phase {phase} failed:\n{tail}")
        state.bootstrapped[phase] = {"fingerprint": fingerprint, "components": wanted}
        state.save(self.layout)
        self.report(f"bootstrap {phase} done ({time.monotonic() - began:.1f} s)")

    def _db_now(self, ctx: CloudContext) -> str:
        return database.query(self._db_server(ctx), "SELECT UTC_TIMESTAMP();").strip()

    def _wait_compute_ready(self, ctx: CloudContext, since: str) -> None:
        """nova-compute is usable once its host is mapped to cell1 and it has reported since `since`."""
        server = self._db_server(ctx)
        api_db = database.full_name(ctx, "nova_api")
        cell_db = database.full_name(ctx, "nova")
        host = openstack.COMPUTE_HOST
        deadline = time.monotonic() + 120
        while True:
            mapped = database.query(
                server,
                f"SELECT COUNT(*) FROM `{api_db}`.host_mappings WHERE host='{host}';",  # noqa: S608 (our constants)
            )
            reported = database.query(
                server,
                f"SELECT COUNT(*) FROM `{cell_db}`.services "  # noqa: S608 (our constants)
                f"WHERE host='{host}' AND `binary`='nova-compute' AND deleted=0 AND updated_at >= '{since}';",
            )
            if int(reported or 0) and not int(mapped or 0):
                conf = str(self.layout.etc_dir("nova") / "nova.conf")
                schema.manage(
                    self.layout, ["nova-manage", "--config-file", conf, "cell_v2", "discover_hosts"]
                )
                continue
            if int(reported or 0) and int(mapped or 0):
                self.report("nova-compute reported and is mapped to cell1")
                return
            if not self._is_running("nova-compute"):
                raise ServiceStartError(
                    "nova-compute", "exited before reporting", log_tail(self.layout.log_file("nova-compute"))
                )
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    "nova-compute",
                    "did not report within 120 s",
                    log_tail(self.layout.log_file("nova-compute")),
                )
            time.sleep(0.5)

    # -- down / status / reset -----------------------------------------------------------------

    def down(self) -> list[str]:
        with self._locked():
            return self._down()

    def _down(self) -> list[str]:
        secrets = load_secrets(self.layout)
        state = DevcloudState.load(self.layout)
        stopped: list[str] = []
        if secrets is not None:
            specs = self.all_specs(self._context(state, secrets))
            names = list(specs)
            # Workers first, then APIs, then keystone, then the backing servers.
            order = [n for n in reversed(names) if n not in BACKING] + ["rabbitmq", "mariadb", "memcached"]
            for name in order:
                if stop(self.layout, name, specs[name].stop_timeout):
                    stopped.append(name)
        stopped.extend(self._kill_strays())
        return stopped

    def _kill_strays(self) -> list[str]:
        """Anything still running inside our root (by working directory) is ours: end it."""
        strays: list[str] = []
        root = str(self.layout.root.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cwd = str((entry / "cwd").readlink())
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cwd == root or cwd.startswith(root + os.sep):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), 9)
                strays.append(f"stray pid {entry.name} ({cmdline[:60].strip()})")
        return strays

    def status(self) -> list[ProcessInfo]:
        secrets = load_secrets(self.layout)
        if secrets is None:
            return []
        state = DevcloudState.load(self.layout)
        specs = self.all_specs(self._context(state, secrets))
        names = state.processes or list(specs)
        return [info(self.layout, specs[name], self.ports_host) for name in names if name in specs]

    def reset(self, *, keep_snapshot: bool = True) -> None:
        """Stop everything and wipe data, configs and logs; the venv (and snapshot) stay."""
        with self._locked():
            state = DevcloudState.load(self.layout)
            secrets = load_secrets(self.layout)
            self._down()
            if not state.is_private_db and secrets is not None and state.db_base_url:
                ctx = self._context(state, secrets)
                database.drop_databases(ctx, self._db_server(ctx), state.synced_databases)
            for path in (self.layout.data, self.layout.etc, self.layout.run, self.layout.logs):
                shutil.rmtree(path, ignore_errors=True)
            self.layout.state_file.unlink(missing_ok=True)
            if not keep_snapshot:
                shutil.rmtree(self.layout.snapshot, ignore_errors=True)
                (self.layout.root / "secrets.json").unlink(missing_ok=True)


def _skip_runtime(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "/locks" in member.name or member.name.endswith(".lock") else member
