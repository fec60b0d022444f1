// kafkajs consumer groups against Strata (run by ci/clients/test_groups_kafkajs.py
// with STRATA_BOOTSTRAP set): a member processes part of a six-partition topic,
// commits exactly what it processed and leaves; a new member of the group
// resumes at the committed offsets, with nothing delivered again and nothing
// skipped. Along the way: describeGroups / listGroups / fetchOffsets.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

const BOOTSTRAP = process.env.STRATA_BOOTSTRAP;
assert.ok(BOOTSTRAP, 'STRATA_BOOTSTRAP must be set (host:port)');
const PARTITIONS = 6;
const DEADLINE_MS = 60000;

const kafka = new Kafka({ clientId: 'strata-ci-kafkajs-groups', brokers: [BOOTSTRAP], logLevel: logLevel.WARN });
const admin = kafka.admin();
const uniq = (name) => `kafkajs-${name}-${Math.random().toString(16).slice(2, 10)}`;

before(async () => { await admin.connect(); });
after(async () => { await admin.disconnect(); });

// Produces `perPartition` records to every partition; returns Map "p:o" -> value.
async function produce(topic, perPartition, tag, into = new Map()) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      const messages = Array.from({ length: perPartition }, (_, i) => ({ partition: p, value: `${tag}:${p}:${i}` }));
      const [res] = await producer.send({ topic, acks: -1, messages });
      assert.equal(res.errorCode, 0);
      const base = Number(res.baseOffset);
      messages.forEach((m, i) => into.set(`${p}:${base + i}`, m.value));
    }
  } finally {
    await producer.disconnect();
  }
  return into;
}

async function committed(groupId, topic) {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(t.topic, topic);
  return Object.fromEntries(t.partitions.map((p) => [p.partition, Number(p.offset)]));
}

async function waitFor(cond, what, timeoutMs = DEADLINE_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function consumer(groupId) {
  return kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 1000, rebalanceTimeout: 10000,
    allowAutoTopicCreation: false });
}

test('consumer group: commit, stop, resume from the committed offsets', async () => {
  const topic = uniq('group');
  const groupId = uniq('g');
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS }] });
  const produced = await produce(topic, 100, 'a');
  const half = produced.size / 2;

  // 1. process half, committing each processed record (autoCommit off), then stop
  const c1 = consumer(groupId);
  await c1.connect();
  await c1.subscribe({ topic, fromBeginning: true });
  const processed = new Map();
  const next = {};
  await c1.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (processed.size >= half) return; // read, not processed, not committed
      const o = Number(message.offset);
      processed.set(`${partition}:${o}`, message.value.toString());
      await c1.commitOffsets([{ topic, partition, offset: String(o + 1) }]);
      next[partition] = o + 1;
    },
  });
  await waitFor(() => processed.size >= half, () => `c1 to process ${half} records (has ${processed.size})`);

  const described = await admin.describeGroups([groupId]);
  const g = described.groups[0];
  assert.equal(g.groupId, groupId);
  assert.equal(g.errorCode, 0);
  assert.equal(g.state, 'Stable');
  assert.equal(g.protocolType, 'consumer');
  assert.equal(g.members.length, 1);
  const listed = await admin.listGroups();
  assert.ok(listed.groups.some((x) => x.groupId === groupId && x.protocolType === 'consumer'), 'listGroups misses the group');

  await c1.disconnect();
  assert.deepEqual(await committed(groupId, topic),
    Object.fromEntries(Array.from({ length: PARTITIONS }, (_, p) => [p, next[p] ?? -1])),
    'fetchOffsets after the first member left');
  const emptied = (await admin.describeGroups([groupId])).groups[0];
  assert.equal(emptied.state, 'Empty', 'the group after its only member left');
  assert.equal(emptied.members.length, 0);

  // 2. more records; a new member resumes at the committed offsets
  await produce(topic, 50, 'b', produced);
  const want = new Map([...produced].filter(([k]) => !processed.has(k)));
  const c2 = consumer(groupId);
  await c2.connect();
  await c2.subscribe({ topic, fromBeginning: true });
  const got = [];
  await c2.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (const m of batch.messages) {
        got.push([`${batch.partition}:${Number(m.offset)}`, m.value.toString()]);
        resolveOffset(m.offset);
      }
      if (batch.messages.length) {
        await c2.commitOffsets([{ topic, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }]);
      }
      await heartbeat();
    },
  });
  try {
    await waitFor(() => got.length >= want.size, () => `c2 to read ${want.size} records (has ${got.length})`);
    const again = got.filter(([k]) => processed.has(k)).map(([k]) => k);
    assert.deepEqual(again, [], 'committed records delivered again to the resumed member');
    assert.equal(new Set(got.map(([k]) => k)).size, got.length, 'records delivered twice to the resumed member');
    assert.deepEqual(new Map(got), want, 'the resumed member read something else than everything not committed');
    const first = {};
    for (const [k] of got) {
      const [p, o] = k.split(':').map(Number);
      if (!(p in first)) first[p] = o;
    }
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(first[p], next[p] ?? 0, `partition ${p}: resumed at ${first[p]}, committed ${next[p]}`);
    }
  } finally {
    await c2.disconnect();
  }
  const ends = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  assert.deepEqual(await committed(groupId, topic), ends, 'committed offsets at the end offsets');

  // deleteGroups of the now empty group
  const del = await admin.deleteGroups([groupId]);
  assert.equal(del[0].errorCode, 0);
  const after = await admin.listGroups();
  assert.ok(!after.groups.some((x) => x.groupId === groupId), 'deleted group still listed');
});
