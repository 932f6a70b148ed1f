import type { Kafka as KafkaClient, SASLOptions } from 'kafkajs';
import { Kafka } from './kafkajs.js';
import type { Logger } from 'pino';
import type { KafkaClusterConfig } from './schema.js';
import { kafkaLevelFor, kafkaLogCreator } from './log-bridge.js';

/**
 * Creates a KafkaJS client for one cluster of the config.
 *
 * Client retries (KafkaJS's own, per request) are kept short — 5 tries over about 8 s — because
 * the mirror's supervisor restarts a failed task with its own capped exponential backoff;
 * retrying for minutes inside one request would hide an outage from /healthz.
 *
 * @param alias the cluster alias (used in the client id: `crr-<alias>-<role>`)
 * @param cluster the cluster's validated config
 * @param role what the client is for, e.g. `source-consumer`; goes into the client id and logs
 * @param logger parent logger; KafkaJS's log is bridged into it
 * @param logLevelName the configured pino level, to pick KafkaJS's level
 */
export function createKafka(alias: string, cluster: KafkaClusterConfig, role: string, logger: Logger, logLevelName = 'info'): KafkaClient {
  return new Kafka({
    clientId: `crr-${alias}-${role}`,
    brokers: cluster.bootstrapServers,
    ssl: cluster.ssl,
    sasl: cluster.sasl ? ({ mechanism: cluster.sasl.mechanism, username: cluster.sasl.username, password: cluster.sasl.password } as SASLOptions) : undefined,
    connectionTimeout: cluster.connectionTimeoutMs,
    requestTimeout: cluster.requestTimeoutMs,
    retry: { initialRetryTime: 250, maxRetryTime: 4000, retries: 5, factor: 0.2, multiplier: 2 },
    logLevel: kafkaLevelFor(logLevelName),
    logCreator: kafkaLogCreator(logger, `${alias} ${role}`),
  });
}
