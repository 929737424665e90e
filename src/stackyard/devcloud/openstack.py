"""Configuration files and process specs of the OpenStack services (all but Swift)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from stackyard.devcloud.context import CloudContext
from stackyard.devcloud.ini import Sections, render_ini
from stackyard.devcloud.spec import AliveCheck, HttpCheck, LogCheck, ServiceSpec, uwsgi_argv

COMPUTE_HOST = "stackyard-devcloud"
SERVICE_USERS = ("nova", "neutron", "glance", "cinder", "placement", "swift")

# Which processes read each config file: `up` restarts those started before the file last changed.
CONFIG_READERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("keystone", "keystone.conf"): ("keystone",),
    ("placement", "placement.conf"): ("placement-api",),
    ("nova", "nova.conf"): ("nova-api", "nova-conductor", "nova-scheduler"),
    ("nova", "nova-compute.conf"): ("nova-compute",),
    ("neutron", "neutron.conf"): ("neutron-api",),
    ("neutron", "ml2_conf.ini"): ("neutron-api",),
    ("glance", "glance-api.conf"): ("glance-api",),
    ("cinder", "cinder.conf"): ("cinder-api", "cinder-scheduler", "cinder-volume"),
}

# NOTE: nova stores the cell's transport URL in the API database; a template keeps the snapshot
# valid whichever broker (private RabbitMQ, an external one, or none) a later `up` uses.
CELL_TRANSPORT_TEMPLATE = "{scheme}://{username}:{password}@{hostname}:{port}/{path}"


def _authtoken(ctx: CloudContext, user: str) -> dict[str, str | int | bool]:
    return {
        "www_authenticate_uri": ctx.url(ctx.ports.keystone),
        "auth_url": ctx.url(ctx.ports.keystone),
        "memcached_servers": ctx.memcached_servers,
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": ctx.secrets.service_password,
        "region_name": ctx.region,
        "service_token_roles_required": True,
    }


def _service_auth(ctx: CloudContext, user: str) -> dict[str, str | int | bool]:
    """A keystoneauth section for one service calling another."""
    return {
        "auth_type": "password",
        "auth_url": ctx.url(ctx.ports.keystone),
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": ctx.secrets.service_password,
        "region_name": ctx.region,
        "valid_interfaces": "public",
    }


def _common(ctx: CloudContext, service: str) -> dict[str, str | int | bool]:
    return {
        "debug": False,
        "use_stderr": True,
        "state_path": str(ctx.layout.data_dir(service)),
    }


def _locks(ctx: CloudContext, service: str) -> dict[str, str | int | bool]:
    return {"lock_path": str(ctx.layout.data_dir(service) / "locks")}


def notifications(ctx: CloudContext) -> dict[str, str | int | bool]:
    """[oslo_messaging_notifications]: versioned notifications on the broker, when there is one.

    Neutron and Nova publish to their own exchanges (`neutron`, `nova`, the services' control
    exchanges) with the routing key `<topic>.<priority>`, e.g. `notifications.info`.
    """
    # NOTE: oslo.messaging's fake driver keeps every notification in an in-process list until a
    # listener in the same process takes it, and nothing ever does: with no broker, keep them off.
    if not ctx.has_broker:
        return {"driver": "noop"}
    return {"driver": "messagingv2", "transport_url": ctx.transport_url, "topics": "notifications"}


def keystone_conf(ctx: CloudContext) -> Sections:
    etc = ctx.layout.etc_dir("keystone")
    return {
        "DEFAULT": {"debug": False, "use_stderr": True},
        "database": {"connection": ctx.db_url("keystone")},
        "token": {"provider": "fernet", "expiration": 86400},
        "fernet_tokens": {"key_repository": str(etc / "fernet-keys")},
        "credential": {"key_repository": str(etc / "credential-keys")},
        # NOTE: without a cache Keystone runs ~380 queries per token validation (1.4 s);
        # one process with an in-memory cache brings requests to tens of milliseconds.
        "cache": {"enabled": True, "backend": "dogpile.cache.memory"},
        "identity": {"password_hash_rounds": 4},
    }


def placement_conf(ctx: CloudContext) -> Sections:
    return {
        "DEFAULT": {"debug": False, "use_stderr": True},
        "placement_database": {"connection": ctx.db_url("placement")},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": _authtoken(ctx, "placement"),
    }


def nova_conf(ctx: CloudContext, *, compute: bool) -> Sections:
    """nova.conf for the API and workers; `compute=True` omits the databases, as nova-compute requires."""
    default = {
        **_common(ctx, "nova"),
        "transport_url": ctx.transport_url,
        "my_ip": ctx.host,
        "host": COMPUTE_HOST,
        "compute_driver": "stackyard_osplugin.virt.SnapshotFakeDriver",
        "instances_path": str(ctx.layout.data_dir("nova") / "instances"),
        # NOTE: no agent ever reports a VIF as plugged, so boots must not wait for the event.
        "vif_plugging_is_fatal": False,
        "vif_plugging_timeout": 0,
        # Headroom for hundreds of tiny servers (benchmarks) on the fake hypervisor.
        "initial_cpu_allocation_ratio": 200.0,
        "initial_ram_allocation_ratio": 200.0,
        "initial_disk_allocation_ratio": 200.0,
        "osapi_compute_workers": 1,
        "metadata_workers": 1,
    }
    sections: dict[str, Mapping[str, str | int | float | bool]] = {"DEFAULT": default}
    if not compute:
        sections["api_database"] = {"connection": ctx.db_url("nova_api")}
        sections["database"] = {"connection": ctx.db_url("nova")}
    sections.update(
        {
            "api": {"auth_strategy": "keystone"},
            "wsgi": {"api_paste_config": str(ctx.layout.venv / "etc" / "nova" / "api-paste.ini")},
            "keystone_authtoken": _authtoken(ctx, "nova"),
            "placement": _service_auth(ctx, "placement"),
            "neutron": {**_service_auth(ctx, "neutron"), "default_floating_pool": "public"},
            "glance": {"region_name": ctx.region, "valid_interfaces": "public"},
            "cinder": {"os_region_name": ctx.region, **_service_auth(ctx, "cinder")},
            # NOTE: Neutron's default policy lets only a token carrying the `service` role delete
            # compute-owned ports; nova must send its service token alongside the user's.
            "service_user": {"send_service_user_token": True, **_service_auth(ctx, "nova")},
            "conductor": {"workers": 1},
            "scheduler": {"workers": 1, "discover_hosts_in_cells_interval": -1},
            "vnc": {"enabled": False},
            "spice": {"enabled": False},
            "oslo_concurrency": _locks(ctx, "nova"),
            "oslo_messaging_notifications": notifications(ctx),
            # NOTE: nova sends instance.interface_attach/detach only as versioned notifications
            # (compute/manager.py _attach_interface: notify_about_instance_action); the legacy
            # format has no interface events. They go to the `versioned_notifications` topic,
            # not to [oslo_messaging_notifications] topics.
            "notifications": {"notification_format": "versioned"},
            "os_vif_ovs": {"ovsdb_interface": "native"},
        }
    )
    return sections


def neutron_conf(ctx: CloudContext) -> Sections:
    return {
        "DEFAULT": {
            **_common(ctx, "neutron"),
            "core_plugin": "ml2",
            "api_paste_config": str(ctx.layout.venv / "etc" / "neutron" / "api-paste.ini"),
            "service_plugins": "router",
            "auth_strategy": "keystone",
            "transport_url": ctx.transport_url,
            "allow_overlapping_ips": True,
            "dhcp_agent_notification": False,
            "notify_nova_on_port_status_changes": True,
            "notify_nova_on_port_data_changes": True,
            "api_workers": 1,
            "rpc_workers": 0,
            "rpc_state_report_workers": 0,
        },
        "database": {"connection": ctx.db_url("neutron")},
        "keystone_authtoken": _authtoken(ctx, "neutron"),
        "nova": _service_auth(ctx, "nova"),
        "oslo_concurrency": _locks(ctx, "neutron"),
        # port.create/update/delete.end, sent by the API layer (neutron/api/v2/base.py) for API calls
        # only: a status change an agent reports over RPC sends none.
        "oslo_messaging_notifications": notifications(ctx),
        "agent": {"root_helper": ""},
    }


def ml2_conf() -> Sections:
    return {
        "ml2": {
            "type_drivers": "flat,vlan,vxlan",
            "project_network_types": "vxlan",
            # Our own driver binds every port on every host, so servers boot with networking.
            "mechanism_drivers": "stackyard_bindall",
            "extension_drivers": "port_security",
        },
        "ml2_type_flat": {"flat_networks": "*"},
        "ml2_type_vlan": {"network_vlan_ranges": "physnet1:100:199"},
        "ml2_type_vxlan": {"vni_ranges": "1:1000"},
        "securitygroup": {"enable_security_group": True, "firewall_driver": "noop"},
    }


def glance_conf(ctx: CloudContext) -> Sections:
    data = ctx.layout.data_dir("glance")
    return {
        "DEFAULT": {
            **_common(ctx, "glance"),
            "enabled_backends": "file:file",
            "worker_self_reference_url": ctx.url(ctx.ports.glance),
            "image_size_cap": 1099511627776,
            "show_image_direct_url": False,
            "show_multiple_locations": False,
        },
        "database": {"connection": ctx.db_url("glance")},
        "keystone_authtoken": _authtoken(ctx, "glance"),
        "paste_deploy": {"flavor": "keystone"},
        "glance_store": {"default_backend": "file"},
        "file": {"filesystem_store_datadir": str(data / "images")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(data / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(data / "tasks")},
        "oslo_concurrency": _locks(ctx, "glance"),
        "oslo_messaging_notifications": {"driver": "noop"},
        "taskflow_executor": {"conversion_format": ""},
    }


def cinder_conf(ctx: CloudContext) -> Sections:
    data = ctx.layout.data_dir("cinder")
    return {
        "DEFAULT": {
            **_common(ctx, "cinder"),
            "auth_strategy": "keystone",
            "transport_url": ctx.transport_url,
            "my_ip": ctx.host,
            "host": COMPUTE_HOST,
            "enabled_backends": "fake",
            "default_volume_type": "__DEFAULT__",
            "api_paste_config": str(ctx.layout.venv / "etc" / "cinder" / "api-paste.ini"),
            "osapi_volume_workers": 1,
            "volumes_dir": str(data / "volumes"),
        },
        "database": {"connection": ctx.db_url("cinder")},
        "keystone_authtoken": _authtoken(ctx, "cinder"),
        "nova": _service_auth(ctx, "nova"),
        "service_user": {"send_service_user_token": True, **_service_auth(ctx, "cinder")},
        "oslo_concurrency": _locks(ctx, "cinder"),
        "oslo_messaging_notifications": {"driver": "noop"},
        "coordination": {"backend_url": f"file://{data / 'coordination'}"},
        "fake": {
            "volume_driver": "cinder.tests.fake_driver.FakeLoggingVolumeDriver",
            "volume_backend_name": "fake",
        },
    }


def config_files(ctx: CloudContext, process: str) -> list[Path]:
    """The config files `process` reads at start (none for processes not configured here)."""
    return [
        ctx.layout.etc_dir(service) / name
        for (service, name), readers in CONFIG_READERS.items()
        if process in readers
    ]


def write_configs(ctx: CloudContext) -> None:
    """Write every OpenStack config file (Swift excepted) and create the data directories.

    A file is rewritten only when its content changes, so its mtime says when it last did: a process
    started before that runs with an old config (see `Devcloud._stale`).
    """
    files: dict[tuple[str, str], Sections] = {
        ("keystone", "keystone.conf"): keystone_conf(ctx),
        ("placement", "placement.conf"): placement_conf(ctx),
        ("nova", "nova.conf"): nova_conf(ctx, compute=False),
        ("nova", "nova-compute.conf"): nova_conf(ctx, compute=True),
        ("neutron", "neutron.conf"): neutron_conf(ctx),
        ("neutron", "ml2_conf.ini"): ml2_conf(),
        ("glance", "glance-api.conf"): glance_conf(ctx),
        ("cinder", "cinder.conf"): cinder_conf(ctx),
    }
    for (service, name), sections in files.items():
        directory = ctx.layout.etc_dir(service)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / name
        text = render_ini(sections)
        if target.exists() and target.read_text() == text:
            continue
        target.write_text(text)
        target.chmod(0o600)
    # NOTE: the WSGI loaders of nova and glance look for their paste file beside their config.
    for service, paste in (("glance", "glance-api-paste.ini"), ("nova", "api-paste.ini")):
        shutil.copyfile(ctx.layout.venv / "etc" / service / paste, ctx.layout.etc_dir(service) / paste)
    for service in ("nova", "neutron", "glance", "cinder", "placement", "keystone"):
        (ctx.layout.data_dir(service) / "locks").mkdir(parents=True, exist_ok=True)
    for sub in ("images", "staging", "tasks"):
        (ctx.layout.data_dir("glance") / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("volumes", "coordination"):
        (ctx.layout.data_dir("cinder") / sub).mkdir(parents=True, exist_ok=True)
    (ctx.layout.data_dir("nova") / "instances").mkdir(parents=True, exist_ok=True)


def _conf(ctx: CloudContext, service: str, name: str) -> str:
    return str(ctx.layout.etc_dir(service) / name)


def openstack_services(ctx: CloudContext) -> dict[str, ServiceSpec]:
    """Every OpenStack process (Swift excepted) by name."""
    etc = ctx.layout.etc_dir
    ports = ctx.ports
    bin_ = ctx.layout.bin
    specs = [
        ServiceSpec(
            "keystone",
            uwsgi_argv(ctx, "keystone", "keystone.wsgi.api:application", ports.keystone),
            HttpCheck(ctx.url(ports.keystone, "/v3")),
            port=ports.keystone,
            env={"OS_KEYSTONE_CONFIG_DIR": str(etc("keystone"))},
        ),
        ServiceSpec(
            "placement-api",
            uwsgi_argv(ctx, "placement", "placement.wsgi.api:application", ports.placement),
            HttpCheck(ctx.url(ports.placement, "/")),
            port=ports.placement,
            env={"OS_PLACEMENT_CONFIG_DIR": str(etc("placement"))},
        ),
        ServiceSpec(
            "nova-api",
            uwsgi_argv(ctx, "nova-api", "nova.wsgi.osapi_compute:application", ports.nova),
            HttpCheck(ctx.url(ports.nova, "/")),
            port=ports.nova,
            env={"OS_NOVA_CONFIG_DIR": str(etc("nova"))},
        ),
        ServiceSpec(
            "neutron-api",
            uwsgi_argv(ctx, "neutron", "neutron.wsgi.api:application", ports.neutron),
            HttpCheck(ctx.url(ports.neutron, "/")),
            port=ports.neutron,
            env={
                "OS_NEUTRON_CONFIG_DIR": str(etc("neutron")),
                "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
            },
        ),
        ServiceSpec(
            "glance-api",
            uwsgi_argv(ctx, "glance", "glance.wsgi.api:application", ports.glance),
            HttpCheck(ctx.url(ports.glance, "/")),
            port=ports.glance,
            env={"OS_GLANCE_CONFIG_DIR": str(etc("glance"))},
        ),
        ServiceSpec(
            "cinder-api",
            uwsgi_argv(
                ctx,
                "cinder",
                "cinder.wsgi.api:application",
                ports.cinder,
                "--pyargv",
                f"--config-file {_conf(ctx, 'cinder', 'cinder.conf')}",
            ),
            HttpCheck(ctx.url(ports.cinder, "/")),
            port=ports.cinder,
        ),
        ServiceSpec(
            "nova-conductor",
            (str(bin_("nova-conductor")), "--config-file", _conf(ctx, "nova", "nova.conf")),
            AliveCheck(settle=3.0),
        ),
        ServiceSpec(
            "nova-scheduler",
            (str(bin_("nova-scheduler")), "--config-file", _conf(ctx, "nova", "nova.conf")),
            AliveCheck(settle=3.0),
        ),
        ServiceSpec(
            "nova-compute",
            (str(bin_("nova-compute")), "--config-file", _conf(ctx, "nova", "nova-compute.conf")),
            AliveCheck(settle=3.0),
            # NOTE: nova-compute ignores SIGTERM for more than 15 s; do not wait that long.
            stop_timeout=5.0,
        ),
        # NOTE: cinder's Service.start() runs init_host_with_rpc() right after its RPC server
        # starts consuming; these are the first lines logged from there (cinder/service.py).
        ServiceSpec(
            "cinder-scheduler",
            (str(bin_("cinder-scheduler")), "--config-file", _conf(ctx, "cinder", "cinder.conf")),
            LogCheck("Automatically selected cinder-volume RPC version"),
        ),
        ServiceSpec(
            "cinder-volume",
            (str(bin_("cinder-volume")), "--config-file", _conf(ctx, "cinder", "cinder.conf")),
            LogCheck("Driver post RPC initialization completed successfully"),
        ),
    ]
    return {spec.name: spec for spec in specs}
