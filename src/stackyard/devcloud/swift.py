"""Swift for the devcloud: proxy and storage server configs, rings, and the four process specs."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Mapping
from pathlib import Path

from stackyard.devcloud.context import CloudContext
from stackyard.devcloud.ini import Sections, render_ini
from stackyard.devcloud.spec import HttpCheck, ServiceSpec
from stackyard.errors import DevcloudError

SERVICE = "swift"
DEVICE = "d1"
PART_POWER = 8
REPLICAS = 1

BOOT_SCRIPT = "boot_swift.py"
SWIFT_CONF = "swift.conf"
PROXY_CONF = "proxy-server.conf"
RING_STAMP = "rings.json"

# NOTE: Swift pickles object metadata (protocol 2) into xattrs, and ext4 holds only ~4 KiB of
# them per inode (4028 bytes measured). The pickle costs far more than the metadata: ~130 bytes
# per 64-byte key and value, and 4 bytes per non-ASCII byte. Swift's defaults (90 keys, 4096
# bytes) can need ~10 KB, 32 keys / 2048 bytes still ~5 KB: the object server answers 507 and
# the proxy error-limits the only disk. With 16 keys / 1024 bytes the ASCII worst case measured
# ~2.7 KiB, even with a 200-character object name, content type and disposition; non-ASCII
# metadata past ~600 bytes can still hit 507. The limits are advertised in /info.
MAX_META_COUNT = 16
MAX_META_OVERALL_SIZE = 1024

# NOTE: Swift's middleware order matters: tempurl and bulk before auth; copy, quotas, slo, dlo,
# versioned_writes and symlink after it (the order of Swift's proxy-server.conf-sample). authtoken
# must precede keystoneauth, and delay_auth_decision lets tempurl and public containers through.
PROXY_PIPELINE = (
    "catch_errors",
    "gatekeeper",
    "healthcheck",
    "proxy-logging",
    "cache",
    "listing_formats",
    "bulk",
    "tempurl",
    "authtoken",
    "keystoneauth",
    "copy",
    "container-quotas",
    "account-quotas",
    "slo",
    "dlo",
    "versioned_writes",
    "symlink",
    "proxy-logging",
    "proxy-server",
)

# Filters that need only `use = egg:swift#<entry point>`.
_PLAIN_FILTERS = {
    "catch_errors": "catch_errors",
    "gatekeeper": "gatekeeper",
    "healthcheck": "healthcheck",
    "proxy-logging": "proxy_logging",
    "listing_formats": "listing_formats",
    "bulk": "bulk",
    "tempurl": "tempurl",
    "copy": "copy",
    "container-quotas": "container_quotas",
    "account-quotas": "account_quotas",
    "slo": "slo",
    "dlo": "dlo",
    "symlink": "symlink",
}

# Storage servers in start order: (process, conf and binary stem, egg entry point).
_STORAGE = (
    ("swift-account", "account-server", "account"),
    ("swift-container", "container-server", "container"),
    ("swift-object", "object-server", "object"),
)

# NOTE: Swift reads storage policies and [swift-constraints] from /etc/swift/swift.conf when
# swift.common.storage_policy and swift.common.constraints are first imported; `swift_dir` in a
# server config only redirects the [swift-hash] lookup (swift.common.utils.set_swift_dir), and no
# environment variable exists (checked in swift 2.38.3). Rather than write to /etc, each server
# runs through this script with the OpenStack venv's python: it points
# swift.common.utils.SWIFT_CONF_FILE at the devcloud's swift.conf before those modules load,
# then runs the venv's console script unchanged. It also replaces the syslog handler class:
# without /dev/log Swift falls back to UDP port 514 and the lines are lost, and
# `log_custom_handlers` cannot fix it alone because proxy-logging builds its access logger from a
# filtered copy of the config that drops that option.
_BOOT_SCRIPT_TEXT = '''\
"""Run one Swift server with the swift.conf beside this file, logging to stderr (written by stackyard).

Usage: python boot_swift.py <venv>/bin/swift-object-server <dir>/object-server.conf
"""

import logging
import os
import runpy
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EARLY_READERS = ("swift.common.storage_policy", "swift.common.constraints")


_stream = []


def log_stream():
    # A duplicate of fd 2, shared by all handlers: forked workers point fds 0-2 at /dev/null.
    if not _stream:
        _stream.append(os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace"))
    return _stream[0]


class StderrLogHandler(logging.StreamHandler):
    """Stands in for Swift's syslog handler; takes (and ignores) the syslog arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(log_stream())

    def format(self, record):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return "%s.%03d %s %s" % (stamp, record.msecs, record.levelname, super().format(record))


def redirect_swift_conf():
    import swift.common.utils as utils
    import swift.common.utils.logs as logs

    early = [name for name in EARLY_READERS if name in sys.modules]
    if early:
        sys.exit("stackyard: %s imported before swift.conf was redirected" % ", ".join(early))
    if not hasattr(logs, "ThreadSafeSysLogHandler"):
        sys.exit("stackyard: swift.common.utils.logs.ThreadSafeSysLogHandler is gone; update boot_swift")
    logs.ThreadSafeSysLogHandler = StderrLogHandler
    utils.SWIFT_CONF_FILE = os.path.join(HERE, "swift.conf")
    utils.HASH_PATH_SUFFIX = b""
    utils.HASH_PATH_PREFIX = b""
    utils.validate_configuration()
    from swift.common import constraints, storage_policy  # noqa: F401 (parse our swift.conf now)

    if not constraints.SWIFT_CONSTRAINTS_LOADED:
        sys.exit("stackyard: %s has no readable [swift-constraints]" % utils.SWIFT_CONF_FILE)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    redirect_swift_conf()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
'''

# Run by the OpenStack venv's python (the app venv has no swift): argv[1] is _ring_spec() as JSON.
_RING_SCRIPT = """\
import json, os, sys
from swift.common.ring import RingBuilder

spec = json.loads(sys.argv[1])
for name, port in spec["ports"].items():
    builder = RingBuilder(spec["part_power"], spec["replicas"], 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": spec["host"], "port": port,
                     "device": spec["device"], "weight": 100.0, "meta": ""})
    builder.rebalance()
    base = os.path.join(spec["dir"], name)
    builder.save(base + ".builder.tmp")
    builder.get_ring().save(base + ".ring.gz.tmp")
    os.replace(base + ".builder.tmp", base + ".builder")
    os.replace(base + ".ring.gz.tmp", base + ".ring.gz")
"""


def _user() -> str:
    """Swift servers switch to `user` on start; the devcloud runs them as whoever starts it."""
    return pwd.getpwuid(os.getuid()).pw_name


def _server_defaults(ctx: CloudContext, name: str, port: int) -> dict[str, str | int | bool]:
    return {
        "bind_ip": ctx.host,
        "bind_port": port,
        # One process per server, no fork: the launcher's PID is the server, and it serves.
        "workers": 0,
        "user": _user(),
        "swift_dir": str(ctx.layout.etc_dir(SERVICE)),
        "log_name": name,
        "log_level": "INFO",
    }


def _authtoken(ctx: CloudContext) -> dict[str, str | int | bool]:
    return {
        "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
        "www_authenticate_uri": ctx.url(ctx.ports.keystone),
        "auth_url": ctx.url(ctx.ports.keystone),
        "memcached_servers": ctx.memcached_servers,
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": "swift",
        "password": ctx.secrets.service_password,
        "region_name": ctx.region,
        "service_token_roles_required": True,
        # Anonymous requests (tempurl, public containers) reach keystoneauth, which decides.
        "delay_auth_decision": True,
        # NOTE: not include_service_catalog = false: keystonemiddleware caches validated tokens in the
        # memcached every service shares, so a token Swift validated first would reach Nova without
        # its catalog, and Nova then fails a server create with EmptyCatalog (it finds Glance there).
        "include_service_catalog": True,
    }


def proxy_conf(ctx: CloudContext) -> Sections:
    special: dict[str, Mapping[str, str | int | bool]] = {
        "cache": {"use": "egg:swift#memcache", "memcache_servers": ctx.memcached_servers},
        "authtoken": _authtoken(ctx),
        "keystoneauth": {
            "use": "egg:swift#keystoneauth",
            "operator_roles": "admin, member",
            "reseller_prefix": "AUTH_",
            "reseller_admin_role": "ResellerAdmin",
        },
        "versioned_writes": {
            "use": "egg:swift#versioned_writes",
            "allow_versioned_writes": True,
            "allow_object_versioning": True,
        },
    }
    sections: dict[str, Mapping[str, str | int | bool]] = {
        "DEFAULT": _server_defaults(ctx, "proxy-server", ctx.ports.swift_proxy),
        "pipeline:main": {"pipeline": " ".join(PROXY_PIPELINE)},
        "app:proxy-server": {
            "use": "egg:swift#proxy",
            "account_autocreate": True,
            # NOTE: with one disk, a single error (e.g. a 507) would otherwise make the proxy
            # skip the only node for 60 s and answer 503 for everything.
            "error_suppression_interval": 1,
        },
    }
    for name in PROXY_PIPELINE[:-1]:
        options = special.get(name) or {"use": f"egg:swift#{_PLAIN_FILTERS[name]}"}
        sections.setdefault(f"filter:{name}", options)
    return sections


def storage_conf(ctx: CloudContext, server: str, entry_point: str, port: int) -> Sections:
    """account-, container- or object-server.conf: one device under the data dir, no mount check."""
    return {
        "DEFAULT": {
            **_server_defaults(ctx, server, port),
            "devices": str(ctx.layout.data_dir(SERVICE)),
            "mount_check": False,
        },
        "pipeline:main": {"pipeline": f"healthcheck {server}"},
        f"app:{server}": {"use": f"egg:swift#{entry_point}"},
        "filter:healthcheck": {"use": "egg:swift#healthcheck"},
    }


def swift_conf(ctx: CloudContext) -> Sections:
    return {
        "swift-hash": {"swift_hash_path_suffix": ctx.secrets.swift_hash_suffix},
        "storage-policy:0": {"name": "Policy-0", "default": "yes"},
        "swift-constraints": {
            "max_meta_count": MAX_META_COUNT,
            "max_meta_overall_size": MAX_META_OVERALL_SIZE,
        },
    }


def _literal(sections: Sections) -> Sections:
    """Swift and paste.deploy interpolate `%(name)s`; a `%` in a secret or path must stay literal."""
    return {
        section: {
            key: value.replace("%", "%%") if isinstance(value, str) else value
            for key, value in options.items()
        }
        for section, options in sections.items()
    }


def _storage_port(ctx: CloudContext, entry_point: str) -> int:
    ports = {
        "account": ctx.ports.swift_account,
        "container": ctx.ports.swift_container,
        "object": ctx.ports.swift_object,
    }
    return ports[entry_point]


def render_swift_configs(ctx: CloudContext) -> dict[str, str]:
    """Every file Swift needs in its etc dir (rings excepted), by file name; no I/O but a user lookup."""
    files = {
        SWIFT_CONF: render_ini(_literal(swift_conf(ctx))),
        PROXY_CONF: render_ini(_literal(proxy_conf(ctx))),
    }
    for _, server, entry_point in _STORAGE:
        sections = storage_conf(ctx, server, entry_point, _storage_port(ctx, entry_point))
        files[f"{server}.conf"] = render_ini(_literal(sections))
    files[BOOT_SCRIPT] = _BOOT_SCRIPT_TEXT
    return files


def _ring_spec(ctx: CloudContext) -> dict[str, object]:
    return {
        "dir": str(ctx.layout.etc_dir(SERVICE)),
        "host": ctx.host,
        "device": DEVICE,
        "part_power": PART_POWER,
        "replicas": REPLICAS,
        "ports": {
            "account": ctx.ports.swift_account,
            "container": ctx.ports.swift_container,
            "object": ctx.ports.swift_object,
        },
    }


def _are_rings_current(etc: Path, spec_text: str) -> bool:
    stamp = etc / RING_STAMP
    rings = [etc / f"{name}.ring.gz" for name in ("account", "container", "object")]
    return all(ring.is_file() for ring in rings) and stamp.is_file() and stamp.read_text() == spec_text


def build_rings(ctx: CloudContext) -> None:
    """Build the three rings with Swift's RingBuilder (~1 s; the CLI takes ~10 s) unless current.

    A ring is rebuilt when missing or when the host or ports changed; with one device every
    partition stays on it, so rebuilding never strands stored data.
    """
    etc = ctx.layout.etc_dir(SERVICE)
    spec = _ring_spec(ctx)
    spec_text = json.dumps(spec, sort_keys=True)
    if _are_rings_current(etc, spec_text):
        return
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    argv = [str(ctx.layout.python), "-c", _RING_SCRIPT, spec_text]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DevcloudError(f"building the Swift rings failed: {exc}") from exc
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise DevcloudError(f"building the Swift rings failed (exit {result.returncode}):\n{tail}")
    (etc / RING_STAMP).write_text(spec_text)


def write_swift_config(ctx: CloudContext) -> None:
    """Write Swift's configs and boot script, create its device dir, and build rings if needed."""
    etc = ctx.layout.etc_dir(SERVICE)
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in render_swift_configs(ctx).items():
        target = etc / name
        target.write_text(text)
        # The proxy config holds the service password, swift.conf the hash suffix.
        target.chmod(0o600)
    (ctx.layout.data_dir(SERVICE) / DEVICE).mkdir(parents=True, exist_ok=True)
    build_rings(ctx)


def swift_services(ctx: CloudContext) -> list[ServiceSpec]:
    """Account, container and object servers, then the proxy; each in the foreground, one process."""
    etc = ctx.layout.etc_dir(SERVICE)

    def argv(server: str) -> tuple[str, ...]:
        return (
            str(ctx.layout.python),
            str(etc / BOOT_SCRIPT),
            str(ctx.layout.bin(f"swift-{server}")),
            str(etc / f"{server}.conf"),
        )

    specs = [
        ServiceSpec(
            name,
            argv(server),
            HttpCheck(ctx.url(_storage_port(ctx, entry_point), "/healthcheck")),
            port=_storage_port(ctx, entry_point),
            start_timeout=60.0,
        )
        for name, server, entry_point in _STORAGE
    ]
    specs.append(
        ServiceSpec(
            "swift-proxy",
            argv("proxy-server"),
            HttpCheck(ctx.url(ctx.ports.swift_proxy, "/healthcheck")),
            port=ctx.ports.swift_proxy,
            start_timeout=60.0,
        )
    )
    return specs
