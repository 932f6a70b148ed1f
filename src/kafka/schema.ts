import { z } from 'zod';

/** SASL settings of one cluster. The password is best given by env override (see config/load.ts). */
export const SaslSchema = z.strictObject({
  /** SASL mechanism, as KafkaJS names it. */
  mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
  username: z.string().min(1),
  password: z.string().min(1),
});

/**
 * How to reach one Kafka cluster: the Kafka fields of `clusters.<alias>` (src/cluster/schema.ts
 * adds the store and change topics). The alias (`primary`, `dr`, ...) is the key in the config,
 * never a field.
 */
export const KafkaClusterSchema = z.strictObject({
  /** `host:port` pairs of the cluster's bootstrap brokers. */
  bootstrapServers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected "host:port"')).min(1),
  /** Use TLS to reach the brokers. Default false. */
  ssl: z.boolean().default(false),
  sasl: SaslSchema.optional(),
  /** Time to establish a TCP connection to a broker, ms. Default 3000. */
  connectionTimeoutMs: z.number().int().positive().default(3000),
  /** Time to wait for a broker's answer to one request, ms. Default 30000. */
  requestTimeoutMs: z.number().int().positive().default(30000),
});

/** A cluster's Kafka connection settings (any cluster config satisfies it). */
export type KafkaClusterConfig = z.infer<typeof KafkaClusterSchema>;
