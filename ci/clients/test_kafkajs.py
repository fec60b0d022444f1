"""Runs the kafkajs suite (node/kafkajs.test.mjs, node's own test runner)
against the shared broker. run.sh installs kafkajs from node/package-lock.json."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import DEFAULT_PARTITIONS

NODE_DIR = Path(__file__).resolve().parent / "node"


def test_kafkajs_suite(bootstrap):
    node = shutil.which("node")
    assert node, "node is not installed (run.sh installs it)"
    assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "kafkajs is not installed: run `npm ci` in ci/clients/node"
    env = dict(os.environ, STRATA_BOOTSTRAP=bootstrap, STRATA_DEFAULT_PARTITIONS=str(DEFAULT_PARTITIONS),
               KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run([node, "--test", "--test-reporter=spec", "kafkajs.test.mjs"], cwd=NODE_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    print(p.stdout[-20000:])
    print(p.stderr[-5000:])
    assert p.returncode == 0, "kafkajs suite failed (its output is above)"
