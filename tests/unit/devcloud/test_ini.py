"""INI rendering and the service configs that matter for a working devcloud."""

from __future__ import annotations

import configparser
import os
from dataclasses import replace
from pathlib import Path

from stackyard.devcloud import openstack
from stackyard.devcloud.context import CloudContext, Layout, Ports, Secrets
from stackyard.devcloud.ini import render_ini


def context(tmp_path: Path) -> CloudContext:
    return CloudContext(
        layout=Layout(tmp_path),
        secrets=Secrets("adm", "dem", "svc-pw", "db-pw", "rb-pw", "suffix"),
        db_base_url="mysql+pymysql://u:p@127.0.0.1:13306",
        transport_url="rabbit://u:p@127.0.0.1:15673/",
        ports=Ports(keystone=15000),
        db_prefix="x_",
    )


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_render_ini_keeps_order_and_formats_booleans() -> None:
    text = render_ini({"DEFAULT": {"debug": False, "workers": 2}, "a": {"x": "y"}})
    assert text == "[DEFAULT]\ndebug = false\nworkers = 2\n\n[a]\nx = y\n"


def test_nova_compute_config_has_no_database_sections(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    api = parse(render_ini(openstack.nova_conf(ctx, compute=False)))
    compute = parse(render_ini(openstack.nova_conf(ctx, compute=True)))
    assert api["database"]["connection"] == "mysql+pymysql://u:p@127.0.0.1:13306/x_nova?charset=utf8"
    assert api["api_database"]["connection"].endswith("/x_nova_api?charset=utf8")
    assert not compute.has_section("database")
    assert not compute.has_section("api_database")
    assert compute["DEFAULT"]["compute_driver"] == "stackyard_osplugin.virt.SnapshotFakeDriver"
    assert compute["DEFAULT"]["vif_plugging_is_fatal"] == "false"
    assert compute["keystone_authtoken"]["auth_url"] == "http://127.0.0.1:15000"


def test_neutron_uses_our_binding_driver(tmp_path: Path) -> None:
    ml2 = parse(render_ini(openstack.ml2_conf()))
    assert ml2["ml2"]["mechanism_drivers"] == "stackyard_bindall"
    neutron = parse(render_ini(openstack.neutron_conf(context(tmp_path))))
    assert neutron["DEFAULT"]["core_plugin"] == "ml2"
    assert neutron["keystone_authtoken"]["password"] == "svc-pw"


def test_keystone_config_caches_and_hashes_cheaply(tmp_path: Path) -> None:
    keystone = parse(render_ini(openstack.keystone_conf(context(tmp_path))))
    assert keystone["cache"]["enabled"] == "true"
    assert keystone["identity"]["password_hash_rounds"] == "4"
    assert keystone["fernet_tokens"]["key_repository"] == str(tmp_path / "etc" / "keystone" / "fernet-keys")


def test_neutron_and_nova_send_notifications_to_the_broker(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    neutron = parse(render_ini(openstack.neutron_conf(ctx)))
    assert neutron["oslo_messaging_notifications"]["driver"] == "messagingv2"
    assert neutron["oslo_messaging_notifications"]["transport_url"] == "rabbit://u:p@127.0.0.1:15673/"
    assert neutron["oslo_messaging_notifications"]["topics"] == "notifications"
    for compute in (False, True):
        nova = parse(render_ini(openstack.nova_conf(ctx, compute=compute)))
        assert nova["oslo_messaging_notifications"]["driver"] == "messagingv2"
        assert nova["notifications"]["notification_format"] == "versioned"


def test_without_a_broker_notifications_stay_off(tmp_path: Path) -> None:
    ctx = replace(context(tmp_path), transport_url="fake://stackyard:none@127.0.0.1:1/")
    assert not ctx.has_broker
    neutron = parse(render_ini(openstack.neutron_conf(ctx)))
    assert neutron["oslo_messaging_notifications"]["driver"] == "noop"
    assert not neutron.has_option("oslo_messaging_notifications", "topics")


def test_configs_are_rewritten_only_when_their_content_changes(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    for service, paste in (("glance", "glance-api-paste.ini"), ("nova", "api-paste.ini")):
        (ctx.layout.venv / "etc" / service).mkdir(parents=True)
        (ctx.layout.venv / "etc" / service / paste).write_text("[app]\n")
    openstack.write_configs(ctx)
    neutron_conf = ctx.layout.etc_dir("neutron") / "neutron.conf"
    os.utime(neutron_conf, (1000.0, 1000.0))
    openstack.write_configs(ctx)
    assert neutron_conf.stat().st_mtime == 1000.0  # same content: the file (and its mtime) stay
    neutron_conf.write_text(neutron_conf.read_text().replace("messagingv2", "noop"))
    os.utime(neutron_conf, (1000.0, 1000.0))
    openstack.write_configs(ctx)
    assert "messagingv2" in neutron_conf.read_text() and neutron_conf.stat().st_mtime > 1000.0
    assert oct(neutron_conf.stat().st_mode & 0o777) == "0o600"
    assert openstack.config_files(ctx, "neutron-api") == [
        neutron_conf,
        ctx.layout.etc_dir("neutron") / "ml2_conf.ini",
    ]
    assert openstack.config_files(ctx, "swift-proxy") == []
