"""Swift's rendered configs and process specs, checked without starting anything."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from stackyard.devcloud.context import CloudContext, Layout, Ports, Secrets
from stackyard.devcloud.spec import HttpCheck
from stackyard.devcloud.swift import (
    BOOT_SCRIPT,
    MAX_META_COUNT,
    MAX_META_OVERALL_SIZE,
    render_swift_configs,
    swift_services,
)

PORTS = Ports(
    swift_proxy=18080,
    swift_object=16200,
    swift_container=16201,
    swift_account=16202,
    memcached=11411,
    keystone=15000,
)


@pytest.fixture
def ctx(tmp_path: Path) -> CloudContext:
    return CloudContext(
        layout=Layout(tmp_path),
        secrets=Secrets("admin-pw", "demo-pw", "svc%pw", "db-pw", "rabbit-pw", "suffix%123"),
        db_base_url="unused",
        transport_url="fake://",
        ports=PORTS,
    )


def parse(text: str) -> configparser.ConfigParser:
    # Interpolating like Swift and paste.deploy do proves `%` in secrets survives.
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return parser


def test_renders_every_config_file(ctx: CloudContext) -> None:
    assert set(render_swift_configs(ctx)) == {
        "swift.conf",
        "proxy-server.conf",
        "account-server.conf",
        "container-server.conf",
        "object-server.conf",
        BOOT_SCRIPT,
    }


def test_proxy_pipeline_runs_keystone_auth_in_order(ctx: CloudContext) -> None:
    proxy = parse(render_swift_configs(ctx)["proxy-server.conf"])
    pipeline = proxy["pipeline:main"]["pipeline"].split()
    assert pipeline[0] == "catch_errors"
    assert pipeline[-1] == "proxy-server"
    assert "tempauth" not in pipeline
    position = pipeline.index
    assert position("tempurl") < position("authtoken") < position("keystoneauth")
    assert position("keystoneauth") < position("copy") < position("slo") < position("dlo")
    assert position("healthcheck") < position("authtoken")
    for name in set(pipeline) - {"proxy-server"}:
        assert proxy.has_section(f"filter:{name}"), name


def test_proxy_talks_to_keystone_and_memcached(ctx: CloudContext) -> None:
    proxy = parse(render_swift_configs(ctx)["proxy-server.conf"])
    authtoken = proxy["filter:authtoken"]
    assert authtoken["paste.filter_factory"] == "keystonemiddleware.auth_token:filter_factory"
    assert authtoken["www_authenticate_uri"] == "http://127.0.0.1:15000"
    assert authtoken["auth_url"] == "http://127.0.0.1:15000"
    assert authtoken["memcached_servers"] == "127.0.0.1:11411"
    assert authtoken["username"] == "swift"
    assert authtoken["password"] == "svc%pw"
    assert authtoken["project_name"] == "service"
    assert authtoken["delay_auth_decision"] == "true"
    keystoneauth = proxy["filter:keystoneauth"]
    assert [role.strip() for role in keystoneauth["operator_roles"].split(",")] == ["admin", "member"]
    assert keystoneauth["reseller_prefix"] == "AUTH_"
    assert proxy["filter:cache"]["memcache_servers"] == "127.0.0.1:11411"


def test_proxy_listens_on_its_port_in_the_foreground(ctx: CloudContext) -> None:
    proxy = parse(render_swift_configs(ctx)["proxy-server.conf"])
    assert proxy["DEFAULT"]["bind_ip"] == "127.0.0.1"
    assert proxy["DEFAULT"]["bind_port"] == "18080"
    assert proxy["DEFAULT"]["workers"] == "0"
    assert proxy["DEFAULT"]["swift_dir"] == str(ctx.layout.etc_dir("swift"))
    assert proxy["app:proxy-server"]["error_suppression_interval"] == "1"
    assert proxy["app:proxy-server"]["account_autocreate"] == "true"


@pytest.mark.parametrize(
    ("server", "port"),
    [("account-server", 16202), ("container-server", 16201), ("object-server", 16200)],
)
def test_storage_servers_use_their_port_and_the_data_dir(ctx: CloudContext, server: str, port: int) -> None:
    conf = parse(render_swift_configs(ctx)[f"{server}.conf"])
    assert conf["DEFAULT"]["bind_port"] == str(port)
    assert conf["DEFAULT"]["devices"] == str(ctx.layout.data_dir("swift"))
    assert conf["DEFAULT"]["mount_check"] == "false"
    assert conf["pipeline:main"]["pipeline"] == f"healthcheck {server}"


def test_swift_conf_carries_hash_suffix_and_ext4_safe_constraints(ctx: CloudContext) -> None:
    conf = parse(render_swift_configs(ctx)["swift.conf"])
    assert conf["swift-hash"]["swift_hash_path_suffix"] == "suffix%123"
    assert conf["storage-policy:0"]["default"] == "yes"
    assert int(conf["swift-constraints"]["max_meta_count"]) == MAX_META_COUNT
    assert int(conf["swift-constraints"]["max_meta_overall_size"]) == MAX_META_OVERALL_SIZE
    assert MAX_META_OVERALL_SIZE < 4096


def test_boot_script_is_valid_python(ctx: CloudContext) -> None:
    text = render_swift_configs(ctx)[BOOT_SCRIPT]
    compile(text, BOOT_SCRIPT, "exec")
    assert "SWIFT_CONF_FILE" in text


def test_services_start_storage_first_through_the_boot_script(ctx: CloudContext) -> None:
    specs = swift_services(ctx)
    assert [spec.name for spec in specs] == [
        "swift-account",
        "swift-container",
        "swift-object",
        "swift-proxy",
    ]
    etc = ctx.layout.etc_dir("swift")
    proxy = specs[-1]
    assert proxy.argv == (
        str(ctx.layout.python),
        str(etc / BOOT_SCRIPT),
        str(ctx.layout.bin("swift-proxy-server")),
        str(etc / "proxy-server.conf"),
    )
    assert proxy.port == 18080
    assert proxy.health == HttpCheck("http://127.0.0.1:18080/healthcheck")
    ports = {spec.name: spec.port for spec in specs}
    assert ports == {
        "swift-account": 16202,
        "swift-container": 16201,
        "swift-object": 16200,
        "swift-proxy": 18080,
    }
    for spec in specs:
        assert isinstance(spec.health, HttpCheck)
        assert spec.health.url == f"http://127.0.0.1:{spec.port}/healthcheck"
