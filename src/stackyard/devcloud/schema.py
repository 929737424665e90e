"""Database schemas of the devcloud's services: keystone-manage, nova-manage, neutron-db-manage and others."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from stackyard.devcloud import openstack
from stackyard.devcloud.context import CloudContext, Layout
from stackyard.errors import DevcloudError


def manage(layout: Layout, argv: list[str], env: dict[str, str] | None = None) -> str:
    """Run an OpenStack management command from the devcloud venv; DevcloudError with its output tail."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    full_env["PATH"] = f"{layout.venv / 'bin'}:{full_env.get('PATH', '/usr/bin:/bin')}"
    full_env.update(env or {})
    result = subprocess.run(
        [str(layout.bin(argv[0])), *argv[1:]],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=layout.root,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise DevcloudError(f"{argv[0]} {' '.join(argv[1:3])} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def sync_schemas(layout: Layout, ctx: CloudContext, missing: list[str]) -> None:
    """Create the schemas of the `missing` databases (independent ones in parallel)."""
    etc = layout.etc_dir
    keystone_conf = str(etc("keystone") / "keystone.conf")
    nova_conf = str(etc("nova") / "nova.conf")
    jobs: dict[str, Callable[[], object]] = {
        "keystone": lambda: _sync_keystone(layout, ctx, keystone_conf),
        "placement": lambda: manage(
            layout,
            [
                "placement-manage",
                "--config-file",
                str(etc("placement") / "placement.conf"),
                "db",
                "sync",
            ],
        ),
        "nova_api": lambda: _sync_nova(layout, ctx, nova_conf),
        "neutron": lambda: manage(
            layout,
            [
                "neutron-db-manage",
                "--config-file",
                str(etc("neutron") / "neutron.conf"),
                "--config-file",
                str(etc("neutron") / "ml2_conf.ini"),
                "upgrade",
                "heads",
            ],
        ),
        "glance": lambda: manage(
            layout, ["glance-manage", "--config-file", str(etc("glance") / "glance-api.conf"), "db_sync"]
        ),
        "cinder": lambda: manage(
            layout, ["cinder-manage", "--config-file", str(etc("cinder") / "cinder.conf"), "db", "sync"]
        ),
    }
    selected = [job for name, job in jobs.items() if name in missing]
    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(job) for job in selected]:
            future.result()


def _sync_keystone(layout: Layout, ctx: CloudContext, conf: str) -> None:
    manage(layout, ["keystone-manage", "--config-file", conf, "db_sync"])
    for setup in ("fernet_setup", "credential_setup"):
        manage(
            layout,
            [
                "keystone-manage",
                "--config-file",
                conf,
                setup,
                "--keystone-user",
                "root",
                "--keystone-group",
                "root",
            ],
        )
    url = ctx.keystone_url
    # NOTE: keystone-manage reads OS_BOOTSTRAP_PASSWORD, keeping the password out of argv.
    manage(
        layout,
        [
            "keystone-manage",
            "--config-file",
            conf,
            "bootstrap",
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
            "--bootstrap-region-id",
            ctx.region,
        ],
        env={"OS_BOOTSTRAP_PASSWORD": ctx.secrets.admin_password},
    )


def _sync_nova(layout: Layout, ctx: CloudContext, conf: str) -> None:
    manage(layout, ["nova-manage", "--config-file", conf, "api_db", "sync"])
    manage(
        layout,
        [
            "nova-manage",
            "--config-file",
            conf,
            "cell_v2",
            "map_cell0",
            "--database_connection",
            ctx.db_url("nova_cell0"),
        ],
    )
    cells = manage(layout, ["nova-manage", "--config-file", conf, "cell_v2", "list_cells"])
    if " cell1 " not in cells:
        manage(
            layout,
            [
                "nova-manage",
                "--config-file",
                conf,
                "cell_v2",
                "create_cell",
                "--name",
                "cell1",
                "--transport-url",
                openstack.CELL_TRANSPORT_TEMPLATE,
                "--database_connection",
                ctx.db_url("nova"),
            ],
        )
    manage(layout, ["nova-manage", "--config-file", conf, "db", "sync"])
