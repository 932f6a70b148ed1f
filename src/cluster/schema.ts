import { z } from 'zod';
import { BackupSchema } from '../backup/schema.js';
import { KafkaClusterSchema } from '../kafka/schema.js';
import { StoreSchema } from '../store/schema.js';

/** A Kafka topic name (Kafka's own rule: at most 249 of `[a-zA-Z0-9._-]`). */
export const TopicNameSchema = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'expected a Kafka topic name ([a-zA-Z0-9._-], at most 249 characters)');

/**
 * A cluster's change log (docs/architecture.md, "The cluster model"): a data topic, keyed by entity, with
 * many partitions, and a metadata topic with one partition (total order). On a replica the same
 * names are read as remote topics (`<primary alias>.<topic>` under the prefix policy).
 */
export const ChangeTopicsSchema = z.strictObject({
  /** Vertex and edge operations. Default `graph.data`. */
  data: TopicNameSchema.default('graph.data'),
  /** Metadata operations and sync-breaking markers. Default `graph.metadata`. */
  metadata: TopicNameSchema.default('graph.metadata'),
  /** Partitions of the data topic when crr creates it. Default 6. The metadata topic always has 1. */
  dataPartitions: z.number().int().min(1).max(10_000).default(6),
  /** Replication factor when crr creates them; -1 = the broker's default. */
  replicationFactor: z.number().int().min(-1).default(-1),
});
export type ChangeTopicsConfig = z.infer<typeof ChangeTopicsSchema>;

/** Roles of a cluster (docs/glossary.md, "role"). */
export const ROLES = ['primary', 'replica'] as const;
export type Role = (typeof ROLES)[number];

/**
 * One cluster under `clusters.<alias>`: its Kafka (the fields of {@link KafkaClusterSchema}),
 * and, for a cluster whose change log crr replays, its store and change topics.
 *
 * - `role`: the role the cluster starts in. Default: `replica` when it is the target of an
 *   enabled mirror flow, else `primary`. Once crr has recorded a role in the cluster's state
 *   (src/cluster/state.ts), the recorded one wins: a promotion changes it, not this file.
 * - `store`: required by `crr run`, `crr replay` and `crr verify` for this cluster; absent for a
 *   cluster that is only mirrored.
 * - `changeTopics`: the change log's topic names.
 * - `backup`: the cluster's backup repository, part size and retention (src/backup/schema.ts);
 *   required by `crr backup`.
 * - `applicationPrincipals`: the Kafka principals (`User:app`) of the applications using this
 *   cluster, for `crr acls plan|apply` (src/acls/plan.ts): WRITE on a primary's change topics,
 *   only READ/DESCRIBE on a replica's remote topics. Default none.
 * - `manageAcls`: let `crr promote` flip this cluster's Kafka ACLs (src/failover/promote-acls.ts):
 *   the new primary gets a primary's ACLs, the old primary a fenced primary's (its
 *   applications' WRITE removed). It needs crr's principal on the cluster to be allowed to
 *   change ACLs (ALTER on the cluster), which `crr acls apply` then grants it (src/acls/fence.ts).
 *   Default false: ACLs are changed only by `crr acls apply --execute`.
 */
export const ClusterSchema = KafkaClusterSchema.extend({
  role: z.enum(ROLES).optional(),
  store: StoreSchema.optional(),
  changeTopics: ChangeTopicsSchema.prefault({}),
  backup: BackupSchema.optional(),
  applicationPrincipals: z.array(z.string().regex(/^[A-Za-z]+:.+$/, 'expected a Kafka principal such as "User:app"')).default([]),
  manageAcls: z.boolean().default(false),
});
export type ClusterConfig = z.infer<typeof ClusterSchema>;
