"""Runs the in-process Neutron and Nova checks, each in its own interpreter (both use oslo.config's CONF)."""

import subprocess
import sys
import unittest
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent.parent


class InProcessOpenStackTest(unittest.TestCase):
    """Needs the OpenStack virtualenv's python (neutron and nova importable); fails elsewhere."""

    def run_check(self, module: str) -> None:
        argv = [sys.executable, "-W", "ignore", "-m", module]
        result = subprocess.run(argv, cwd=PLUGIN_DIR, capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr[-4000:])

    def test_ml2_binds_every_network_type_and_sets_active(self) -> None:
        self.run_check("tests.check_ml2")

    def test_nova_loads_driver_and_uploads_snapshots(self) -> None:
        self.run_check("tests.check_virt")


if __name__ == "__main__":
    unittest.main()
