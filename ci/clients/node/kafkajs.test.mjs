// kafkajs against Strata (run by ci/clients/test_kafkajs.py with STRATA_BOOTSTRAP set).
//
// kafkajs's Consumer only works inside a consumer group, which Strata does not
// serve yet. So reading back goes one level down, through kafkajs's own
// cluster and broker objects: the same Fetch request encoding and record-batch
// decoding (decompression included) that its Consumer uses, minus the group.
// When groups land, a Consumer-based test belongs here too.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';

const { Kafka, CompressionTypes, ConfigResourceTypes, logLevel } = kafkajs;

const BOOTSTRAP = process.env.STRATA_BOOTSTRAP;
assert.ok(BOOTSTRAP, 'STRATA_BOOTSTRAP must be set (host:port)');
const PARTITIONS = Number(process.env.STRATA_DEFAULT_PARTITIONS || 4); // auto-created topics' partitions

const kafka = new Kafka({
  clientId: 'strata-ci-kafkajs',
  brokers: [BOOTSTRAP],
  logLevel: logLevel.WARN,
});
const admin = kafka.admin();

const uniq = (name) => `kafkajs-${name}-${Math.random().toString(16).slice(2, 10)}`;

before(async () => { await admin.connect(); });
after(async () => { await admin.disconnect(); });

// kafkajs's cluster object, as its producer and consumer build it.
function lowLevelCluster() {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  assert.ok(sym, 'kafkajs internals changed: no createCluster symbol');
  return kafka[sym]({ allowAutoTopicCreation: false });
}

// Reads partitions [0, counts.length) of `topic` from offset 0 up to counts[p]
// with Fetch requests, the way kafkajs's consumer does (records before the
// fetch offset in a returned batch are dropped, as the consumer drops them).
async function fetchAll(topic, counts, timeoutMs = 30000) {
  const cluster = lowLevelCluster();
  await cluster.connect();
  try {
    await cluster.addTargetTopic(topic);
    await cluster.refreshMetadata();
    const partitions = counts.map((_, p) => p);
    const next = counts.map(() => 0);
    const got = counts.map(() => []);
    const hw = counts.map(() => null);
    const deadline = Date.now() + timeoutMs;
    while (counts.some((c, p) => next[p] < c) && Date.now() < deadline) {
      const byLeader = cluster.findLeaderForPartitions(topic, partitions);
      for (const [nodeId, parts] of Object.entries(byLeader)) {
        const broker = await cluster.findBroker({ nodeId });
        const resp = await broker.fetch({
          replicaId: -1,
          isolationLevel: 1,
          maxWaitTime: 100,
          minBytes: 1,
          maxBytes: 1 << 20,
          topics: [{ topic, partitions: parts.map((p) => ({ partition: p, fetchOffset: String(next[p]), maxBytes: 256 << 10 })) }],
        });
        for (const t of resp.responses) {
          assert.equal(t.topicName, topic);
          for (const part of t.partitions) {
            assert.equal(part.errorCode, 0, `fetch error ${part.errorCode} on partition ${part.partition}`);
            hw[part.partition] = Number(part.highWatermark);
            for (const m of part.messages) {
              if (Number(m.offset) < next[part.partition]) continue;
              assert.equal(Number(m.offset), next[part.partition], `partition ${part.partition}: offset gap`);
              got[part.partition].push(m);
              next[part.partition] += 1;
            }
          }
        }
      }
    }
    return { got, hw };
  } finally {
    await cluster.disconnect();
  }
}

for (const [name, compression] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
  test(`idempotent produce (${name}) and read back`, async () => {
    const topic = uniq(`produce-${name}`);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    await producer.connect();
    const sent = Array.from({ length: PARTITIONS }, () => []);
    try {
      // 20 sends of 100 messages: each send is one multi-record batch per partition
      for (let round = 0; round < 20; round++) {
        const messages = [];
        for (let j = 0; j < 100; j++) {
          const i = round * 100 + j;
          const m = {
            partition: i % PARTITIONS,
            key: i % 6 === 0 ? null : `k-${i % 17}`,
            value: `${String(i).padStart(5, '0')}:` + 'v'.repeat(i % 150),
            headers: i % 5 === 0 ? { seq: String(i) } : undefined,
          };
          messages.push(m);
        }
        const res = await producer.send({ topic, acks: -1, compression, messages });
        for (const r of res) assert.equal(r.errorCode, 0, `produce error ${r.errorCode}`);
        // the reported base offset is where this batch starts in its partition
        for (const r of res) {
          assert.equal(Number(r.baseOffset), sent[r.partition].length, `partition ${r.partition}: base offset`);
        }
        for (const m of messages) sent[m.partition].push(m);
      }
    } finally {
      await producer.disconnect();
    }

    const offsets = await admin.fetchTopicOffsets(topic);
    assert.equal(offsets.length, PARTITIONS);
    for (const o of offsets) {
      assert.equal(o.low, '0', `partition ${o.partition}: low watermark`);
      assert.equal(o.high, String(sent[o.partition].length), `partition ${o.partition}: high watermark`);
    }

    const { got, hw } = await fetchAll(topic, sent.map((s) => s.length));
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(hw[p], sent[p].length, `partition ${p}: high watermark in Fetch`);
      assert.equal(got[p].length, sent[p].length, `partition ${p}: record count`);
      got[p].forEach((m, idx) => {
        const want = sent[p][idx];
        assert.equal(m.value.toString(), want.value, `partition ${p} offset ${idx}: value`);
        assert.equal(m.key === null ? null : m.key.toString(), want.key, `partition ${p} offset ${idx}: key`);
        const headers = Object.fromEntries(Object.entries(m.headers || {}).map(([k, v]) => [k, v.toString()]));
        assert.deepEqual(headers, want.headers || {}, `partition ${p} offset ${idx}: headers`);
      });
    }

    // offsets by timestamp: from 0 every partition starts at 0; far future is past the end (-1)
    const atZero = await admin.fetchTopicOffsetsByTimestamp(topic, 0);
    for (const o of atZero) assert.equal(o.offset, '0', `partition ${o.partition}: offset for timestamp 0`);
    const future = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() + 86400000);
    for (const o of future) {
      // kafkajs maps Kafka's "no such offset" (-1) to the high watermark
      assert.ok(['-1', String(sent[o.partition].length)].includes(o.offset), `partition ${o.partition}: ${o.offset}`);
    }
  });
}

test('admin: create, describe, alter (AlterConfigs), add partitions, delete', async () => {
  const topic = uniq('admin');
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 2, replicationFactor: 1,
      configEntries: [{ name: 'retention.ms', value: '7200000' }, { name: 'max.message.bytes', value: '500000' }] }],
  });
  assert.equal(created, true);
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] }), false, 'created twice');

  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(md.topics[0].partitions.length, 2);

  const describe = async () => {
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'max.message.bytes'] }],
    });
    assert.equal(res.resources[0].errorCode, 0);
    return Object.fromEntries(res.resources[0].configEntries.map((e) => [e.configName, e]));
  };
  let cfg = await describe();
  assert.equal(cfg['retention.ms'].configValue, '7200000');
  assert.equal(cfg['retention.ms'].isDefault, false);
  assert.equal(cfg['max.message.bytes'].configValue, '500000');

  // AlterConfigs (not incremental) replaces the whole set of overrides
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '60000' }] }],
  });
  cfg = await describe();
  assert.equal(cfg['retention.ms'].configValue, '60000');
  assert.equal(cfg['max.message.bytes'].configValue, '1048588', 'override not named in AlterConfigs must be removed');

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
  const md3 = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(md3.topics[0].partitions.length, 3);

  await admin.deleteTopics({ topics: [topic], timeout: 10000 });
  const names = await admin.listTopics();
  assert.ok(!names.includes(topic), 'deleted topic still listed');
});
