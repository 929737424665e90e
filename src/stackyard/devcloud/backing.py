"""Private MariaDB, RabbitMQ and memcached instances living in the devcloud's data dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from stackyard.devcloud.context import CloudContext
from stackyard.devcloud.spec import ServiceSpec, TcpCheck
from stackyard.errors import DevcloudError

MARIADB_SERVER = Path("/usr/sbin/mariadbd")
MARIADB_INSTALL_DB = "mariadb-install-db"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBIT_USER = "stackyard"
DB_USER = "stackyard"


def mariadb_socket(ctx: CloudContext) -> Path:
    return ctx.layout.run / "mariadb.sock"


def private_db_base_url(ctx: CloudContext) -> str:
    return f"mysql+pymysql://{DB_USER}:{ctx.secrets.db_password}@{ctx.host}:{ctx.ports.mariadb}"


def private_transport_url(ctx: CloudContext) -> str:
    return f"rabbit://{RABBIT_USER}:{ctx.secrets.rabbit_password}@{ctx.host}:{ctx.ports.rabbitmq}/"


def mariadb_spec(ctx: CloudContext) -> ServiceSpec:
    datadir = ctx.layout.data_dir("mariadb")
    return ServiceSpec(
        "mariadb",
        (
            str(MARIADB_SERVER),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={mariadb_socket(ctx)}",
            f"--pid-file={ctx.layout.run / 'mariadbd.pid'}",
            f"--port={ctx.ports.mariadb}",
            f"--bind-address={ctx.host}",
            "--user=root",
            "--skip-log-bin",
            "--max-connections=2000",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
            "--character-set-server=utf8mb3",
            "--collation-server=utf8mb3_general_ci",
            "--skip-name-resolve",
        ),
        TcpCheck(ctx.ports.mariadb),
        port=ctx.ports.mariadb,
        stop_timeout=30.0,
        start_timeout=60.0,
    )


def init_mariadb(ctx: CloudContext) -> bool:
    """Create the private data dir once; True if it was created now (then grant our user)."""
    datadir = ctx.layout.data_dir("mariadb")
    if (datadir / "mysql").is_dir():
        return False
    datadir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            MARIADB_INSTALL_DB,
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        raise DevcloudError(f"mariadb-install-db failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return True


def grant_private_user(ctx: CloudContext) -> None:
    """Our user with a generated password, over TCP on loopback only."""
    password = ctx.secrets.db_password
    sql = (
        f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}';"
        f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'127.0.0.1' WITH GRANT OPTION;"
        "FLUSH PRIVILEGES;"
    )
    result = subprocess.run(
        ["mariadb", f"--socket={mariadb_socket(ctx)}", "-uroot"],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevcloudError(f"could not create the devcloud database user: {result.stderr.strip()}")


def rabbitmq_spec(ctx: CloudContext) -> ServiceSpec:
    base = ctx.layout.data_dir("rabbitmq")
    conf = ctx.layout.etc_dir("rabbitmq") / "rabbitmq.conf"
    return ServiceSpec(
        "rabbitmq",
        (str(RABBITMQ_SERVER),),
        TcpCheck(ctx.ports.rabbitmq),
        port=ctx.ports.rabbitmq,
        env={
            "HOME": str(base),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(ctx.layout.logs),
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(ctx.layout.etc_dir("rabbitmq") / "enabled_plugins"),
            "RABBITMQ_NODENAME": "stackyard-devcloud@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": ctx.host,
            "RABBITMQ_NODE_PORT": str(ctx.ports.rabbitmq),
            "RABBITMQ_DIST_PORT": str(ctx.ports.rabbitmq_dist),
            "ERL_EPMD_ADDRESS": ctx.host,
            "RABBITMQ_PID_FILE": str(ctx.layout.run / "rabbitmq-beam.pid"),
        },
        stop_timeout=20.0,
        start_timeout=90.0,
    )


def write_rabbitmq_config(ctx: CloudContext) -> None:
    etc = ctx.layout.etc_dir("rabbitmq")
    etc.mkdir(parents=True, exist_ok=True)
    (ctx.layout.data_dir("rabbitmq") / "mnesia").mkdir(parents=True, exist_ok=True)
    conf = etc / "rabbitmq.conf"
    conf.write_text(
        "\n".join(
            [
                f"listeners.tcp.default = {ctx.host}:{ctx.ports.rabbitmq}",
                f"default_user = {RABBIT_USER}",
                f"default_pass = {ctx.secrets.rabbit_password}",
                "default_vhost = /",
                "loopback_users = none",
                "log.console = true",
                "log.console.level = warning",
                "log.file = false",
                "vm_memory_high_watermark.relative = 0.2",
                "disk_free_limit.absolute = 50MB",
                "",
            ]
        )
    )
    conf.chmod(0o600)
    (etc / "enabled_plugins").write_text("[].\n")


RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


def add_private_vhost(ctx: CloudContext, vhost: str) -> str:
    """Create a vhost on the private RabbitMQ for another devcloud sharing it; returns its URL.

    Devclouds sharing one vhost would consume each other's RPC queues (queue names are
    per vhost, e.g. `cinder-scheduler`), so each gets its own.
    """
    spec = rabbitmq_spec(ctx)
    env = {**os.environ, **spec.env}
    node = spec.env["RABBITMQ_NODENAME"]
    for argv in (
        [str(RABBITMQCTL), "-n", node, "add_vhost", vhost],
        [str(RABBITMQCTL), "-n", node, "set_permissions", "-p", vhost, RABBIT_USER, ".*", ".*", ".*"],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0 and "already_exists" not in result.stdout + result.stderr:
            raise DevcloudError(
                f"rabbitmqctl {argv[3]} failed: {(result.stdout + result.stderr).strip()[-500:]}"
            )
    return f"{private_transport_url(ctx)}{vhost}"


# Queues oslo.messaging's notifier declares: neutron's and nova's `notifications.<priority>` and
# nova's `versioned_notifications.<priority>`.
NOTIFICATION_QUEUES = r"^(versioned_)?notifications\."
NOTIFICATION_POLICY = {"max-length": 10000, "message-ttl": 3_600_000}  # messages, milliseconds


def cap_notification_queues(ctx: CloudContext, vhost: str = "/") -> None:
    """Bound the notification queues nobody consumes, with a policy (a runtime change, no restart).

    NOTE: oslo.messaging's rabbit notifier declares a queue named after the routing key on the
    first notification of each connection (impl_rabbit `_publish_and_creates_default_queue`), so
    that a consumer that comes later finds what it missed. With no consumer, as in the devcloud,
    that queue only grows; a policy caps it without touching the arguments the notifier declares
    it with (a queue redeclared with other arguments is a PRECONDITION_FAILED error for neutron).
    """
    spec = rabbitmq_spec(ctx)
    env = {**os.environ, **spec.env}
    argv = [
        str(RABBITMQCTL),
        "-n",
        spec.env["RABBITMQ_NODENAME"],
        "set_policy",
        "-p",
        vhost,
        "--apply-to",
        "queues",
        "stackyard-notifications-cap",
        NOTIFICATION_QUEUES,
        json.dumps(NOTIFICATION_POLICY),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise DevcloudError(
            f"rabbitmqctl set_policy failed: {(result.stdout + result.stderr).strip()[-500:]}"
        )


def memcached_spec(ctx: CloudContext) -> ServiceSpec:
    return ServiceSpec(
        "memcached",
        ("memcached", "-l", ctx.host, "-p", str(ctx.ports.memcached), "-U", "0", "-u", "root", "-m", "64"),
        TcpCheck(ctx.ports.memcached),
        port=ctx.ports.memcached,
        start_timeout=15.0,
    )
