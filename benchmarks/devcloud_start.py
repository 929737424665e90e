"""Measure devcloud start times: full stack fresh and from snapshot, quota subset from snapshot.

Run: uv run python benchmarks/devcloud_start.py [--dir DIR]
It wipes the devcloud in DIR (default: the usual devcloud directory), keeping its virtualenv,
so the install is excluded from every figure. Targets (issue): full <= 150 s fresh, <= 60 s from
snapshot, quota subset <= 30 s from snapshot.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stackyard.devcloud.components import parse_components
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root

QUOTA_SUBSET = "identity,compute-api,network,volume-api"


def timed_up(cloud: Devcloud, services: str | None, *, use_snapshot: bool = True) -> tuple[float, bool]:
    began = time.monotonic()
    result = cloud.up(UpOptions(parse_components(services), use_snapshot=use_snapshot))
    return time.monotonic() - began, result.restored_snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    cloud = Devcloud(Layout((args.dir or default_root()).resolve()))
    cloud.up(UpOptions(parse_components("identity")))  # make sure the venv is installed first
    rows = []
    cloud.reset(keep_snapshot=False)
    seconds, restored = timed_up(cloud, None)
    rows.append(("full stack, fresh databases", seconds, restored, 150.0))
    cloud.reset(keep_snapshot=True)
    seconds, restored = timed_up(cloud, None)
    rows.append(("full stack, from snapshot", seconds, restored, 60.0))
    cloud.reset(keep_snapshot=True)
    seconds, restored = timed_up(cloud, QUOTA_SUBSET)
    rows.append(("quota subset, from snapshot", seconds, restored, 30.0))
    cloud.down()
    print(f"{'start':34} {'seconds':>8} {'target':>7} {'ratio':>6}  snapshot")
    for name, secs, was_restored, target in rows:
        print(f"{name:34} {secs:8.1f} {target:7.0f} {secs / target:6.2f}  {was_restored}")


if __name__ == "__main__":
    main()
