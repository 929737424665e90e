"""`up` on a running devcloud restarts exactly the processes started before a config they read changed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from stackyard.devcloud import openstack
from stackyard.devcloud.context import CloudContext, Layout, Secrets
from stackyard.devcloud.launcher import Devcloud
from stackyard.devcloud.process import spawn, stop, wait_healthy
from stackyard.devcloud.spec import AliveCheck, ServiceSpec


def test_a_process_older_than_its_config_file_is_stale(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "dc")
    (layout.venv / "bin").mkdir(parents=True)
    ctx = CloudContext(
        layout, Secrets("a", "d", "s", "db", "rb", "x"), "mysql+pymysql://u:p@h:1", "rabbit://u:p@h:2/"
    )
    for service in ("neutron", "nova"):
        layout.etc_dir(service).mkdir(parents=True)
    conf = layout.etc_dir("neutron") / "neutron.conf"
    conf.write_text("[DEFAULT]\n")
    nova_conf = layout.etc_dir("nova") / "nova.conf"
    nova_conf.write_text("[DEFAULT]\n")
    os.utime(conf, (time.time() - 60, time.time() - 60))
    os.utime(nova_conf, (time.time() - 60, time.time() - 60))
    cloud = Devcloud(layout)
    sleeper = (sys.executable, "-c", "import time; time.sleep(60)")
    for name in ("neutron-api", "nova-api"):
        spec = ServiceSpec(name, sleeper, AliveCheck(0.1))
        wait_healthy(layout, spec, "127.0.0.1", spawn(layout, spec, "127.0.0.1"), time.monotonic())
    try:
        assert cloud._stale(ctx, ["neutron-api", "nova-api", "keystone"]) == []  # keystone: not running
        conf.write_text("[DEFAULT]\ndebug = true\n")
        os.utime(conf, (time.time() + 5, time.time() + 5))  # past the one-second margin
        assert cloud._stale(ctx, ["neutron-api", "nova-api"]) == ["neutron-api"]
        assert openstack.config_files(ctx, "nova-api") == [nova_conf]
    finally:
        for name in ("neutron-api", "nova-api"):
            stop(layout, name, 5)
