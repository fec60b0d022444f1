"""kcat -G (librdkafka 2.0.x's balanced consumer, an older client): it reads
every record of a topic once, commits on exit (auto commit), and a second run
of the same group reads only what was produced since."""

from __future__ import annotations

import shutil
import subprocess

from groups import committed_offsets, create_topic, end_offsets, produce_numbered

PARTITIONS = 6


def kcat_group(bootstrap, group, topic, timeout=90):
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed (run.sh installs it)"
    cmd = [kcat, "-b", bootstrap, "-G", group, "-e", "-q", "-f", "%t %p %o %s\\n",
           "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000",
           "-X", "client.id=strata-ci-kcat", topic]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}: {p.stderr[-3000:]}"
    out = {}
    for line in p.stdout.splitlines():
        t, part, off, value = line.split(" ", 3)
        key = (t, int(part), int(off))
        assert key not in out, f"kcat -G read {key} twice"
        out[key] = value
    return out


def test_kcat_balanced_consumer_commits_and_resumes(group_broker, group, topic):
    b = group_broker.bootstrap
    create_topic(b, topic, PARTITIONS)
    produced = produce_numbered(b, topic, PARTITIONS, 50, "a")

    first = kcat_group(b, group, topic)
    assert first == produced, (f"kcat -G read {len(first)} records, {len(produced)} produced; "
                               f"missing {sorted(set(produced) - set(first))[:10]}")
    ends = end_offsets(b, topic, PARTITIONS)
    assert committed_offsets(b, group) == {(topic, p): o for p, o in ends.items()}, "kcat's commits on exit"

    more = produce_numbered(b, topic, PARTITIONS, 30, "b")
    second = kcat_group(b, group, topic)
    assert second == more, (f"the second run read {len(second)} records, {len(more)} were new; "
                            f"already read before: {sorted(set(second) & set(first))[:10]}")
    ends = end_offsets(b, topic, PARTITIONS)
    assert committed_offsets(b, group) == {(topic, p): o for p, o in ends.items()}
