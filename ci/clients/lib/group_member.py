"""One confluent-kafka consumer-group member, run as its own process by the
group tests (lib/groups.py starts it), so that a test can kill -9 it.

    python3 group_member.py CONFIG_JSON

CONFIG_JSON: {"events": path, "topics": [...], "conf": {librdkafka settings}}

It subscribes, consumes in batches and, after each batch, commits exactly the
offsets it processed, synchronously, before it consumes again; so whatever it
gave up in a rebalance was committed before it rejoined. Everything it does is
appended to the events file as JSON lines, flushed before the next step (a
kill -9 loses nothing written before it):

    {"e": "start", "pid": ...}
    {"e": "assign" | "revoke" | "lost", "parts": [[topic, p], ...], "owned": [[topic, p], ...]}
    {"e": "m", "t": topic, "p": p, "o": offset, "v": value}      one per message, before its commit
    {"e": "commit", "offsets": [[topic, p, next_offset], ...]}    after the commit succeeded
    {"e": "commit_error", "error": "...", "offsets": [...]}
    {"e": "commits_off"}                                          after SIGUSR1: it stops committing
    {"e": "error", "error": "..."}                                 consumer errors (poll)
    {"e": "closed"}                                               after SIGTERM: close() returned

SIGUSR1 stops committing (the records it reads from then on are its
"uncommitted tail"); SIGTERM closes the consumer (LeaveGroup for a dynamic
member) and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main() -> int:
    cfg = json.loads(sys.argv[1])
    out = open(cfg["events"], "a", buffering=1 << 16)
    state = {"stop": False, "commit": True, "ack_commits_off": False}

    def emit(ev: dict) -> None:
        ev["ts"] = time.time()
        out.write(json.dumps(ev) + "\n")

    def flush() -> None:
        out.flush()

    def on_term(_sig, _frm):
        state["stop"] = True

    def on_usr1(_sig, _frm):
        state["commit"] = False
        state["ack_commits_off"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGUSR1, on_usr1)

    conf = dict(cfg["conf"])
    conf.setdefault("enable.auto.commit", False)
    conf.setdefault("auto.offset.reset", "earliest")
    conf["error_cb"] = lambda err: (emit({"e": "error", "error": str(err)}), flush())

    owned: set[tuple[str, int]] = set()
    c = Consumer(conf)

    def parts(ps):
        return sorted([tp.topic, tp.partition] for tp in ps)

    def on_assign(consumer, ps):
        owned.update((tp.topic, tp.partition) for tp in ps)
        emit({"e": "assign", "parts": parts(ps), "owned": sorted(list(x) for x in owned)})
        flush()

    def on_revoke(consumer, ps):
        owned.difference_update((tp.topic, tp.partition) for tp in ps)
        emit({"e": "revoke", "parts": parts(ps), "owned": sorted(list(x) for x in owned)})
        flush()

    def on_lost(consumer, ps):
        owned.difference_update((tp.topic, tp.partition) for tp in ps)
        emit({"e": "lost", "parts": parts(ps), "owned": sorted(list(x) for x in owned)})
        flush()

    emit({"e": "start", "pid": os.getpid()})
    flush()
    c.subscribe(cfg["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    while not state["stop"]:
        if state["ack_commits_off"]:
            state["ack_commits_off"] = False
            emit({"e": "commits_off"})
            flush()
        msgs = c.consume(num_messages=200, timeout=0.2)
        nxt: dict[tuple[str, int], int] = {}
        for m in msgs:
            if m.error():
                emit({"e": "error", "error": str(m.error())})
                continue
            v = m.value()
            emit({"e": "m", "t": m.topic(), "p": m.partition(), "o": m.offset(),
                  "v": None if v is None else v.decode(errors="replace")})
            nxt[(m.topic(), m.partition())] = m.offset() + 1
        flush()
        if nxt and state["commit"]:
            offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(nxt.items())]
            listed = [[t, p, o] for (t, p), o in sorted(nxt.items())]
            try:
                res = c.commit(offsets=offsets, asynchronous=False) or []
                bad = [tp for tp in res if tp.error]
                good = [[tp.topic, tp.partition, tp.offset] for tp in res if not tp.error]
                if good:
                    emit({"e": "commit", "offsets": good})
                if bad:
                    emit({"e": "commit_error", "error": "; ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in bad),
                          "offsets": [[tp.topic, tp.partition, tp.offset] for tp in bad]})
            except KafkaException as e:
                emit({"e": "commit_error", "error": str(e), "offsets": listed})
            flush()

    c.close()
    emit({"e": "closed"})
    flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
