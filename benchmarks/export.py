"""Export an image Glance -> Swift: stackyard vs the two-step anchor vs a raw copy of the same bytes.

Run: uv run python benchmarks/export.py [--size-mib 1024] [--small-mib 256] [--segment-mib 100] [--keep]
Uploads a --size-mib raw image of incompressible bytes to the running devcloud (started if needed),
then, in one run and on the same machine:
  1. `stackyard exports run --image ID --to swift://bench-<run>/stackyard/` (the CLI, one process:
     Glance stream -> parallel Swift segments, checksum verified on the fly);
  2. the two-step anchor: `openstack image save --file F ID` then `swift upload --segment-size S`;
  3. a raw copy of the same bytes: `dd` of a file of that size to another file with fdatasync (the
     machine's own limit for moving this many bytes through the disk);
  4. stackyard again with a --small-mib image, to show its peak RSS does not grow with the image.
Prints wall time, throughput and peak RSS (of each process tree's largest process) and the ratios.
The container and images are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openstack
import yaml

from stackyard.cloud.images import ImageData, ImageGateway
from stackyard.cloud.session import open_session
from stackyard.devcloud.access import Credentials, credentials
from stackyard.devcloud.components import ALL
from stackyard.devcloud.context import Layout
from stackyard.devcloud.launcher import Devcloud, UpOptions, default_root

MIB = 1024 * 1024
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Measure:
    name: str
    seconds: float
    peak_rss_mib: float

    def rate(self, size: int) -> float:
        return size / MIB / self.seconds


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the peak RSS (MiB) of the process (it and the children it waited for)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if status != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
        )
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def pattern(seed: str, size: int) -> Iterator[bytes]:
    left, index = size, 0
    while left > 0:
        piece = hashlib.shake_256(f"{seed}:{index}".encode()).digest(min(4 * MIB, left))
        if index == 0:
            piece = b"stackyard export benchmark\n".ljust(512, b"\0") + piece[512:]
        left -= len(piece)
        index += 1
        yield piece


def openstack_env(creds: Credentials) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_AUTH_URL=creds.auth_url,
        OS_USERNAME=creds.username,
        OS_PASSWORD=creds.password,
        OS_PROJECT_NAME=creds.project_name,
        OS_USER_DOMAIN_NAME=creds.user_domain_name,
        OS_PROJECT_DOMAIN_NAME=creds.project_domain_name,
        OS_REGION_NAME=creds.region_name,
        OS_IDENTITY_API_VERSION="3",
        OS_AUTH_VERSION="3",
    )
    return env


def stackyard_env(creds: Credentials, directory: Path, segment: int) -> dict[str, str]:
    config = directory / "stackyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "providers": {
                    "clouds": [],
                    "openstack": {
                        "auth_url": creds.auth_url,
                        "username": creds.username,
                        "password": creds.password,
                        "project_name": creds.project_name,
                        "user_domain_name": creds.user_domain_name,
                        "project_domain_name": creds.project_domain_name,
                        "region_name": creds.region_name,
                    },
                },
                "data_dir": str(directory / "data"),
                "exports": {"segment_size": segment, "parallel_segments": 4},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKYARD_"))}
    env["STACKYARD_CONFIG"] = str(config)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small-mib", type=int, default=256)
    parser.add_argument("--segment-mib", type=int, default=100)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    size, small, segment = args.size_mib * MIB, args.small_mib * MIB, args.segment_mib * MIB

    cloud = Devcloud(Layout(default_root()), report=lambda msg: print(f"devcloud: {msg}", file=sys.stderr))
    cloud.up(UpOptions(ALL))
    creds = credentials(cloud, "admin")
    conn = openstack.connect(
        auth_url=creds.auth_url,
        username=creds.username,
        password=creds.password,
        project_name=creds.project_name,
        user_domain_name=creds.user_domain_name,
        project_domain_name=creds.project_domain_name,
        region_name=creds.region_name,
        load_yaml_config=False,
        load_envvars=False,
    )
    images = ImageGateway(open_session(conn, name="bench"))
    run_id = uuid.uuid4().hex[:6]
    container = f"bench-{run_id}"
    conn.object_store.create_container(container)
    work = Path(tempfile.mkdtemp(prefix="stackyard-bench-export-"))
    made: list[str] = []
    try:
        ids = {}
        for label, nbytes in (("big", size), ("small", small)):
            started = time.monotonic()
            image = images.create_image(ImageData(f"bench-export-{label}-{run_id}", "raw"))
            made.append(image.id)
            images.upload(image.id, pattern(f"{run_id}-{label}", nbytes), size=nbytes)
            ids[label] = image.id
            print(
                f"uploaded a {nbytes // MIB} MiB image in {time.monotonic() - started:.1f} s", file=sys.stderr
            )

        sy_env = stackyard_env(creds, work, segment)
        stackyard = [str(BIN / "stackyard"), "exports", "run", "--image"]
        t, rss = run([*stackyard, ids["big"], "--to", f"swift://{container}/stackyard/", "--no-wait"], sy_env)
        # --no-wait still runs the export in the CLI's process (no broker); it only skips the progress bar.
        ours = Measure("stackyard exports run", t, rss)

        saved = work / "image.raw"
        os_env = openstack_env(creds)
        t1, rss1 = run([str(BIN / "openstack"), "image", "save", "--file", str(saved), ids["big"]], os_env)
        t2, rss2 = run(
            [
                str(BIN / "swift"),
                "upload",
                "--segment-size",
                str(segment),
                "--object-name",
                "anchor/image.raw",
                container,
                str(saved),
            ],
            os_env,
        )
        anchor = Measure("openstack image save + swift upload", t1 + t2, max(rss1, rss2))

        copy = work / "copy.raw"
        t, rss = run(["dd", f"if={saved}", f"of={copy}", "bs=4M", "conv=fdatasync", "status=none"], os_env)
        raw = Measure("dd copy with fdatasync", t, rss)
        copy.unlink()
        saved.unlink()

        t, rss = run([*stackyard, ids["small"], "--to", f"swift://{container}/small/", "--no-wait"], sy_env)
        ours_small = Measure(f"stackyard, {small // MIB} MiB image", t, rss)

        print(f"\n{size // MIB} MiB image, Glance -> Swift, {segment // MIB} MiB segments")
        print(f"{'':40} {'wall s':>8} {'MiB/s':>8} {'peak RSS MiB':>13}")
        for m in (ours, anchor, raw):
            print(f"{m.name:40} {m.seconds:8.1f} {m.rate(size):8.1f} {m.peak_rss_mib:13.0f}")
        s = ours_small
        print(f"{s.name:40} {s.seconds:8.1f} {s.rate(small):8.1f} {s.peak_rss_mib:13.0f}")
        print(f"\nanchor / stackyard wall time: {anchor.seconds / ours.seconds:.2f}x")
        print(f"stackyard / raw copy wall time: {ours.seconds / raw.seconds:.2f}x")
        print(
            f"stackyard peak RSS: {ours.peak_rss_mib:.0f} MiB at {size // MIB} MiB,"
            f" {ours_small.peak_rss_mib:.0f} MiB at {small // MIB} MiB"
        )
    finally:
        if not args.keep:
            for item in list(conn.object_store.objects(container)):
                conn.object_store.delete_object(item, container=container)
            conn.object_store.delete_container(container)
            for image_id in made:
                images.delete_image(image_id)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
