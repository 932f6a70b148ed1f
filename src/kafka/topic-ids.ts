import { createRequire } from 'node:module';
import type { Kafka } from 'kafkajs';
import { CrrError, describeError } from '../errors.js';

/**
 * Topic ids (KIP-516): the UUID a Kafka cluster gives each topic when it is created. A topic
 * deleted and created again under the same name gets a new id, which is the only sound way to
 * tell two incarnations of a topic apart: offsets, log ends and leader epochs of a new
 * incarnation can equal or pass the old one's.
 *
 * KafkaJS 2.2.4 (its last release) sends Metadata v6, which predates topic ids (v10+). This
 * module sends one Metadata v12 request (the first flexible version whose request may name
 * topics only; Apache Kafka's `MetadataRequest.json`) through the connection KafkaJS itself
 * opened and authenticated — TLS and SASL as configured for the cluster — using KafkaJS's own
 * protocol encoder and decoder. It reads KafkaJS internals that are frozen with that release:
 * the client's private cluster factory and a broker's connection pool. A broker that does not
 * serve Metadata v12 (Kafka before 2.8) answers UNSUPPORTED_VERSION, thrown as a typed error.
 */

/** The Kafka protocol's Metadata API key. */
const METADATA_API_KEY = 3;
/** Metadata v12: flexible (KIP-482), topic ids in the response (KIP-516). */
const METADATA_VERSION = 12;
/** A null topic id in the protocol: all zeros. */
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

const require = createRequire(import.meta.url);
// KafkaJS's protocol encoder and decoder; CommonJS modules of the installed package.
const Encoder = require('kafkajs/src/protocol/encoder') as new () => KafkaEncoder;
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => KafkaDecoder;
const { createErrorFromCode } = require('kafkajs/src/protocol/error') as { createErrorFromCode(code: number): Error & { type?: string } };

interface KafkaEncoder {
  writeInt8(v: number): KafkaEncoder;
  writeInt32(v: number): KafkaEncoder;
  writeBoolean(v: boolean): KafkaEncoder;
  writeUVarInt(v: number): KafkaEncoder;
  writeUVarIntString(v: string | null): KafkaEncoder;
  writeBuffer(v: Buffer): KafkaEncoder;
}

interface KafkaDecoder {
  readInt8(): number;
  readInt16(): number;
  readInt32(): number;
  readBoolean(): boolean;
  readUVarInt(): number;
  readUVarIntString(): string | null;
  readBytes(n: number): Buffer;
  readTaggedFields(): void;
}

/** The parts of KafkaJS's cluster and broker this module uses. */
interface KafkaJsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  brokerPool: { seedBroker?: { connectionPool: { send(request: unknown): Promise<unknown> } } };
}

/** What the broker said of one topic. */
export interface TopicIdEntry {
  /** The topic's id as a UUID string; `undefined` when the topic does not exist (UNKNOWN_TOPIC_OR_PARTITION). */
  topicId: string | undefined;
  /** Partitions of this incarnation. */
  partitions: number;
}

/** Formats 16 bytes as a UUID string. */
function uuid(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The Metadata v12 request body for `topics` (by name), preceded by the request header's empty tagged fields. */
function encodeRequest(topics: string[]): KafkaEncoder {
  // KafkaJS writes request header v1 (api key, version, correlation id, client id); a flexible
  // version's header v2 adds the tagged fields after it, so the body starts with them.
  const e = new Encoder().writeUVarInt(0);
  e.writeUVarInt(topics.length + 1);
  for (const name of topics) e.writeBuffer(Buffer.alloc(16)).writeUVarIntString(name).writeUVarInt(0);
  return e.writeBoolean(false).writeBoolean(false).writeUVarInt(0);
}

/**
 * Decodes a Metadata v12 response body (after the correlation id): the response header's tagged
 * fields, then throttle time, brokers, cluster id, controller id and topics.
 * @throws Error the decoder's own errors on a truncated response
 */
export function decodeMetadataV12(payload: Buffer): Map<string, { errorCode: number; topicId: string; partitions: number }> {
  const d = new Decoder(payload);
  d.readTaggedFields(); // response header v1
  d.readInt32(); // throttle_time_ms
  const brokers = d.readUVarInt() - 1;
  for (let i = 0; i < brokers; i++) {
    d.readInt32();
    d.readUVarIntString();
    d.readInt32();
    d.readUVarIntString();
    d.readTaggedFields();
  }
  d.readUVarIntString(); // cluster_id
  d.readInt32(); // controller_id
  const topics = new Map<string, { errorCode: number; topicId: string; partitions: number }>();
  const count = d.readUVarInt() - 1;
  for (let i = 0; i < count; i++) {
    const errorCode = d.readInt16();
    const name = d.readUVarIntString();
    const topicId = uuid(d.readBytes(16));
    d.readBoolean(); // is_internal
    const partitions = d.readUVarInt() - 1;
    for (let p = 0; p < partitions; p++) {
      d.readInt16(); // error_code
      d.readInt32(); // partition_index
      d.readInt32(); // leader_id
      d.readInt32(); // leader_epoch
      for (let a = 0; a < 3; a++) {
        const n = d.readUVarInt() - 1; // replica, isr, offline replica node ids
        for (let j = 0; j < n; j++) d.readInt32();
      }
      d.readTaggedFields();
    }
    d.readInt32(); // topic_authorized_operations
    d.readTaggedFields();
    if (name !== null) topics.set(name, { errorCode, topicId, partitions: Math.max(0, partitions) });
  }
  return topics;
}

/** Finds the KafkaJS client's private cluster factory (a symbol-keyed own property of the client). */
function clusterFactory(kafka: Kafka): (opts: { allowAutoTopicCreation: boolean }) => KafkaJsCluster {
  const key = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  const factory = key === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[key];
  if (typeof factory !== 'function')
    throw new CrrError('CRR_KAFKA', 'this KafkaJS version has no cluster factory to read topic ids with', { retriable: false });
  return factory as (opts: { allowAutoTopicCreation: boolean }) => KafkaJsCluster;
}

/**
 * Reads topic ids of one cluster. Keeps one connection (opened on first use, dropped after an
 * error so that the next call reconnects); {@link close} ends it.
 */
export class TopicIdReader {
  private cluster: KafkaJsCluster | undefined;

  constructor(private readonly kafka: Kafka) {}

  /**
   * The id and partition count of each of `topics` (a topic that does not exist maps to
   * `topicId: undefined`). Never creates a topic.
   * @throws CrrError CRR_KAFKA (retriable) when the cluster cannot be reached, or a topic's
   *   metadata carries an error other than UNKNOWN_TOPIC_OR_PARTITION; not retriable when the
   *   broker does not serve Metadata v12 (UNSUPPORTED_VERSION: Kafka older than 2.8)
   */
  async topicIds(topics: string[]): Promise<Map<string, TopicIdEntry>> {
    const out = new Map<string, TopicIdEntry>();
    if (topics.length === 0) return out;
    let answer: Map<string, { errorCode: number; topicId: string; partitions: number }>;
    try {
      if (!this.cluster) {
        const cluster = clusterFactory(this.kafka)({ allowAutoTopicCreation: false });
        await cluster.connect();
        this.cluster = cluster;
      }
      const broker = this.cluster.brokerPool.seedBroker;
      if (!broker) throw new Error('no connected broker');
      answer = (await broker.connectionPool.send({
        request: { apiKey: METADATA_API_KEY, apiVersion: METADATA_VERSION, apiName: 'Metadata', encode: async () => encodeRequest(topics) },
        response: { decode: async (payload: Buffer) => decodeMetadataV12(payload), parse: async (data: unknown) => data },
      })) as typeof answer;
    } catch (err) {
      await this.close();
      const unsupported = (err as { type?: string }).type === 'UNSUPPORTED_VERSION';
      throw new CrrError(
        'CRR_KAFKA',
        unsupported
          ? 'the broker does not serve Metadata v12 (topic ids, Kafka 2.8 or later): crr cannot tell a recreated topic from the old one'
          : `cannot read topic ids: ${describeError(err)}`,
        { cause: err, retriable: !unsupported },
      );
    }
    for (const name of topics) {
      const t = answer.get(name);
      if (!t || t.errorCode === 3 /* UNKNOWN_TOPIC_OR_PARTITION */) {
        out.set(name, { topicId: undefined, partitions: 0 });
        continue;
      }
      if (t.errorCode !== 0) {
        const e = createErrorFromCode(t.errorCode);
        throw new CrrError('CRR_KAFKA', `cannot read the topic id of ${name}: ${e.type ?? e.message}`, { cause: e, retriable: true });
      }
      out.set(name, { topicId: t.topicId === ZERO_UUID ? undefined : t.topicId, partitions: t.partitions });
    }
    return out;
  }

  /** Closes the connection, if open. Never throws. */
  async close(): Promise<void> {
    const c = this.cluster;
    this.cluster = undefined;
    await c?.disconnect().catch(() => undefined);
  }
}
