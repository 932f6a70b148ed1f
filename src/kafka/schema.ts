import { z } from 'zod';

/**
 * TLS to the brokers, beyond `ssl: true` (system CAs): Kafka's truststore and keystore as PEM
 * files, in Node's terms (the options of `tls.connect`, which KafkaJS passes on).
 */
export const KafkaTlsSchema = z
  .strictObject({
    /** PEM file of the CA certificate(s) the brokers' certificates must chain to; replaces the system CAs (Kafka's `ssl.truststore.location`). Absent: the system CAs. */
    caFile: z.string().min(1).optional(),
    /** PEM file of the client certificate, for mTLS (Kafka's `ssl.keystore.location`); with `keyFile`. */
    certFile: z.string().min(1).optional(),
    /** PEM file of the client certificate's private key (unencrypted), for mTLS; with `certFile`. */
    keyFile: z.string().min(1).optional(),
    /** Host name the brokers' certificates must name (SNI and verification). Default: each broker's host. */
    servername: z.string().min(1).optional(),
    /**
     * `false` turns certificate verification OFF: any certificate is accepted, so anyone on the
     * path can read and change the traffic. Default true; crr logs a warning for every client of
     * a cluster where it is off. For a test rig only.
     */
    rejectUnauthorized: z.boolean().default(true),
  })
  .superRefine((t, ctx) => {
    if ((t.certFile === undefined) !== (t.keyFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [t.certFile === undefined ? 'certFile' : 'keyFile'],
        message: 'certFile and keyFile go together (the client certificate of mTLS and its key)',
      });
    }
  });

/** SASL PLAIN or SCRAM: a user and its password, given as a value or as a file (a Kubernetes secret mount). */
const SaslPasswordSchema = z.strictObject({
  /** SASL mechanism, as KafkaJS names it. */
  mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
  username: z.string().min(1),
  /** The password; best given by env override (`CRR__clusters__<alias>__sasl__password`). */
  password: z.string().min(1).optional(),
  /** A file holding the password (one trailing newline ignored); read when a client is created. */
  passwordFile: z.string().min(1).optional(),
});

/**
 * SASL OAUTHBEARER: a token from a file, or from a command, read again at each token request (a
 * rotated token applies at the next authentication). Exactly one of `tokenFile` / `tokenCommand`.
 */
const SaslOauthBearerSchema = z.strictObject({
  mechanism: z.literal('oauthbearer'),
  /** A file holding the token (surrounding whitespace ignored), e.g. one a sidecar refreshes. */
  tokenFile: z.string().min(1).optional(),
  /**
   * A command that prints the token on stdout (surrounding whitespace ignored), as an argv list
   * (no shell): `[program, arg, ...]`, e.g. a cloud CLI's `get-token`. Run at each token request,
   * at most 30 s; a non-zero exit refuses the authentication (CRR_KAFKA_AUTH, naming the path).
   */
  tokenCommand: z.array(z.string().min(1)).min(1).optional(),
});

/**
 * SASL settings of one cluster: `plain`, `scram-sha-256`, `scram-sha-512` (with `username` and
 * exactly one of `password` / `passwordFile`), or `oauthbearer` (with `tokenFile` or `tokenCommand`). Without TLS
 * (`ssl`) the config is refused unless the cluster sets `allowInsecureSasl: true` (checked in
 * src/config/schema.ts).
 */
export const SaslSchema = z.union([SaslPasswordSchema, SaslOauthBearerSchema]).superRefine((s, ctx) => {
  if (s.mechanism === 'oauthbearer') {
    if ((s.tokenFile === undefined) === (s.tokenCommand === undefined))
      ctx.addIssue({ code: 'custom', path: ['tokenFile'], message: 'give exactly one of tokenFile and tokenCommand (SASL OAUTHBEARER)' });
    return;
  }
  if ((s.password === undefined) === (s.passwordFile === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['password'], message: `give exactly one of password and passwordFile (SASL ${s.mechanism.toUpperCase()})` });
  }
});

/**
 * The `ssl` field of a cluster (and of a flow's `sourceAuth` / `targetAuth`): `false`, `true`
 * (the system CAs, verification on), or {@link KafkaTlsSchema}. No default here: the cluster
 * defaults it to `false`, an override left out keeps the cluster's.
 */
export const KafkaSslSchema = z.union([z.boolean(), KafkaTlsSchema]);

/**
 * How to reach one Kafka cluster: the Kafka fields of `clusters.<alias>` (src/cluster/schema.ts
 * adds the store and change topics). The alias (`primary`, `dr`, ...) is the key in the config,
 * never a field.
 */
export const KafkaClusterSchema = z.strictObject({
  /** `host:port` pairs of the cluster's bootstrap brokers. */
  bootstrapServers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected "host:port"')).min(1),
  /**
   * TLS to the brokers: `false` (default), `true` (the system CAs, verification on), or
   * {@link KafkaTlsSchema} (`caFile`, `certFile` + `keyFile` for mTLS, `servername`,
   * `rejectUnauthorized`).
   */
  ssl: KafkaSslSchema.default(false),
  sasl: SaslSchema.optional(),
  /**
   * Accept SASL without TLS (`ssl` false): a PLAIN password or a bearer token then crosses the
   * network in clear, and SCRAM is open to a man in the middle. Default false: such a config is
   * refused at load (exit 78).
   */
  allowInsecureSasl: z.boolean().default(false),
  /** Time to establish a TCP connection to a broker, ms. Default 3000. */
  connectionTimeoutMs: z.number().int().positive().default(3000),
  /** Time to wait for a broker's answer to one request, ms. Default 30000. */
  requestTimeoutMs: z.number().int().positive().default(30000),
});

/** A cluster's Kafka connection settings (any cluster config satisfies it). */
export type KafkaClusterConfig = z.infer<typeof KafkaClusterSchema>;
/** The TLS object form of `ssl`. */
export type KafkaTlsConfig = z.infer<typeof KafkaTlsSchema>;
/** The `ssl` field: `false`, `true`, or the TLS object. */
export type KafkaSslConfig = z.infer<typeof KafkaSslSchema>;
/** The `sasl` settings of a cluster. */
export type SaslConfig = z.infer<typeof SaslSchema>;

/** Where a client's `ssl` and `sasl` settings come from in the config, for errors that name the path. */
export interface KafkaAuthPaths {
  /** e.g. `clusters.primary.ssl` or `mirror.flows[0].sourceAuth.ssl` */
  ssl: string;
  /** e.g. `clusters.primary.sasl` or `mirror.flows[0].sourceAuth.sasl` */
  sasl: string;
}
