"""Shared fixtures of the real-client suites (run by ci/clients/run.sh).

- `broker`: one Strata broker for the whole session, auto-creating topics with
  DEFAULT_PARTITIONS partitions;
- `topic`: a fresh topic name per test;
- `new_broker`: a factory for tests that need a broker of their own (the crash
  and bad-input tests); each one started is stopped at the end of its test;
- `group_broker`: the broker of the consumer-group tests (one for the session,
  GROUP_PARTITIONS partitions for auto-created topics, group.initial.rebalance.delay.ms
  lowered by group_broker_args());
- `members`: consumer-group member processes (lib/groups.py), killed at the
  end of the test.

CLIENTS_BOOTSTRAP=host:port runs the suites against a broker that is already
running (say a real Kafka, to check a test itself), auto-creating topics with
CLIENTS_DEFAULT_PARTITIONS partitions; tests that need their own broker skip.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

from strata_broker import Broker, strata_bin  # noqa: E402

DEFAULT_PARTITIONS = int(os.environ.get("CLIENTS_DEFAULT_PARTITIONS", "4"))
EXTERNAL = os.environ.get("CLIENTS_BOOTSTRAP")


class ExternalBroker:
    """A broker this suite did not start (CLIENTS_BOOTSTRAP)."""

    name = "external"
    log_path = "(not ours)"

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.host, port = bootstrap.rsplit(":", 1)
        self.port = int(port)

    def alive(self) -> bool:
        return True

    def log_tail(self, lines: int = 0) -> str:
        return "(external broker: no log)"


def require_own_brokers():
    if EXTERNAL:
        pytest.skip("needs a broker of its own (CLIENTS_BOOTSTRAP is set)")


def pytest_report_header(config):
    return [f"broker: {EXTERNAL} (external)" if EXTERNAL else f"strata binary: {strata_bin()}"]


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    if EXTERNAL:
        yield ExternalBroker(EXTERNAL)
        return
    b = Broker(tmp_path_factory.mktemp("shared") / "data", args=["--default-partitions", str(DEFAULT_PARTITIONS)], name="shared")
    b.start()
    yield b
    alive = b.alive()
    code = b.stop()
    # A broker that died during the session is a failure of its own.
    assert alive, f"the shared broker died during the session (status {code}); log tail:\n{b.log_tail()}"


GROUP_PARTITIONS = 6
# group.initial.rebalance.delay.ms for the group tests: Kafka's default (3000)
# makes every first join of a group wait 3 s; short enough to keep the tests
# fast, long enough for members started together to join one generation.
GROUP_INITIAL_REBALANCE_DELAY_MS = int(os.environ.get("CLIENTS_GROUP_REBALANCE_DELAY_MS", "500"))


def group_broker_args() -> list[str]:
    """Serve flags of the group tests' brokers: the initial rebalance delay
    lowered (`strata serve --config NAME=VALUE` takes any Kafka broker config)."""
    return ["--config", f"group.initial.rebalance.delay.ms={GROUP_INITIAL_REBALANCE_DELAY_MS}"]


@pytest.fixture(scope="session")
def group_broker(tmp_path_factory):
    if EXTERNAL:
        yield ExternalBroker(EXTERNAL)
        return
    b = Broker(tmp_path_factory.mktemp("groups") / "data",
               args=["--default-partitions", str(GROUP_PARTITIONS), *group_broker_args()], name="groups")
    b.start()
    yield b
    alive = b.alive()
    code = b.stop()
    assert alive, f"the group tests' broker died during the session (status {code}); log tail:\n{b.log_tail()}"


@pytest.fixture
def members(tmp_path, group_broker):
    from groups import Members
    ms = Members(tmp_path, group_broker.bootstrap)
    yield ms
    ms.close()


@pytest.fixture
def group(request):
    """A consumer group id no other test uses."""
    name = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:100]
    return f"g-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bootstrap(broker):
    return broker.bootstrap


@pytest.fixture
def topic(request):
    """A topic name no other test uses: test name plus a random suffix."""
    name = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:150]
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_broker(tmp_path):
    require_own_brokers()
    started: list[Broker] = []

    def make(args=(), name="broker", port=None) -> Broker:
        b = Broker(tmp_path / f"{name}-{len(started)}", port=port, args=list(args), name=name)
        started.append(b)
        return b

    make.started = started
    yield make
    for b in started:
        b.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every broker log the test touched."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    brokers = []
    for name in ("broker", "group_broker"):
        if name in item.funcargs:
            brokers.append(item.funcargs[name])
    if "new_broker" in item.funcargs:
        brokers.extend(item.funcargs["new_broker"].started)
    for b in brokers:
        rep.sections.append((f"broker log ({b.name}, {b.log_path})", b.log_tail(40)))
    if "members" in item.funcargs:
        from groups import describe_members
        ms = item.funcargs["members"].all
        if ms:
            rep.sections.append(("group members", describe_members(ms)))
