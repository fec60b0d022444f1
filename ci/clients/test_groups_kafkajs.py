"""Runs the kafkajs consumer-group suite (node/kafkajs_groups.test.mjs, node's
own test runner) against the group tests' broker. run.sh installs kafkajs from
node/package-lock.json."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


def test_kafkajs_group_commit_stop_resume(group_broker):
    node = shutil.which("node")
    assert node, "node is not installed (run.sh installs it)"
    assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "kafkajs is not installed: run `npm ci` in ci/clients/node"
    env = dict(os.environ, STRATA_BOOTSTRAP=group_broker.bootstrap, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run([node, "--test", "--test-reporter=spec", "kafkajs_groups.test.mjs"], cwd=NODE_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    print(p.stdout[-20000:])
    print(p.stderr[-5000:])
    assert p.returncode == 0, "kafkajs group suite failed (its output is above)"
