import { z } from 'zod';

/**
 * Change-event protocol v1: the JSON value of every record on a cluster's change topics.
 * Documented field by field, with an example per operation, in docs/protocol.md; a unit test
 * parses every example there.
 *
 * An event is one flat JSON object: the envelope (`v`, `id`, `ts`, `epoch`, `origin`, `op`) and
 * the fields of its operation. Every object is strict: an unknown key is an error, so a producer
 * that speaks a newer version is refused rather than half-understood.
 */

/** Protocol version carried in `v`. */
export const PROTOCOL_VERSION = 1;

// --- what a string may hold: what the store (PostgreSQL, PGlite) can keep --------------------
// docs/protocol.md "Strings". An event the store can never hold must be refused here, where the
// writer refuses it and replay dead-letters it, not by the store, where it would fail its batch.

/**
 * Maximum length of an identifier (a name, type, vertex id, event id, origin) in UTF-8 bytes.
 * Identifiers are btree index keys in the store, and PostgreSQL refuses an index entry over
 * 2704 bytes (a third of an 8 kB page). The widest key is an edge's primary key, five
 * identifiers (type, from type, from id, to type, to id): 5 x (512 + a 4-byte length) + an
 * 8-byte tuple header = 2588 bytes, which fits even when nothing compresses.
 */
export const MAX_IDENTIFIER_BYTES = 512;

/** With the `u` flag a surrogate pair is one code point, so only a lone half matches. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Why `value` cannot be stored as text or in jsonb, or undefined: U+0000 (PostgreSQL text and
 * jsonb cannot hold it) or a lone UTF-16 surrogate (not valid UTF-8; jsonb refuses its escape).
 * Neither message repeats the value.
 */
export function unstorableText(value: string): string | undefined {
  const nul = value.indexOf('\u0000');
  if (nul >= 0) return `contains U+0000 (NUL) at character ${nul}, which PostgreSQL text and jsonb cannot hold`;
  const lone = LONE_SURROGATE.exec(value);
  if (lone)
    return `contains a lone UTF-16 surrogate (U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}) at character ${lone.index}, which is not valid UTF-8`;
  return undefined;
}

/** Why `value` cannot be an identifier (see {@link unstorableText}, {@link MAX_IDENTIFIER_BYTES}), or undefined. */
export function invalidIdentifier(value: string): string | undefined {
  const text = unstorableText(value);
  if (text) return text;
  // a UTF-16 code unit is at most 3 UTF-8 bytes: only a long string needs counting
  if (value.length * 3 > MAX_IDENTIFIER_BYTES) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_IDENTIFIER_BYTES)
      return `is ${bytes} bytes in UTF-8, over the limit of ${MAX_IDENTIFIER_BYTES} bytes for an identifier (a store index key)`;
  }
  return undefined;
}

/** A free string the store keeps as text or in jsonb: no U+0000, no lone surrogate. */
const text = z.string().superRefine((v, ctx) => {
  const why = unstorableText(v);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});
/** A name, type or id: non-empty, storable, at most {@link MAX_IDENTIFIER_BYTES} UTF-8 bytes. */
const name = z
  .string()
  .min(1)
  .superRefine((v, ctx) => {
    const why = invalidIdentifier(v);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });

/** An attribute value: a JSON scalar, or a list of scalars (a TigerGraph LIST or SET). */
const scalar = z.union([text, z.number(), z.boolean(), z.null()]);
export const AttributeValueSchema = z.union([scalar, z.array(scalar)], { error: 'expected a string, number, boolean, null or a list of these' });
/**
 * Attributes of a vertex or an edge, by attribute name. A name is an identifier (it may be empty,
 * as before); a refused one is reported at its own path, `attributes.<name>`.
 */
export const AttributesSchema = z.record(z.string(), AttributeValueSchema).superRefine((attributes, ctx) => {
  for (const key of Object.keys(attributes)) {
    const why = invalidIdentifier(key);
    if (why) ctx.addIssue({ code: 'custom', path: [key], message: `attribute name ${why}` });
  }
});

/** Attribute types of vertex and edge types (TigerGraph's primitive types and their collections). */
export const ATTRIBUTE_TYPES = [
  'INT',
  'UINT',
  'FLOAT',
  'DOUBLE',
  'BOOL',
  'STRING',
  'DATETIME',
  'LIST<INT>',
  'LIST<DOUBLE>',
  'LIST<STRING>',
  'SET<INT>',
  'SET<STRING>',
] as const;
/** One attribute of a vertex or edge type: `{ name, type }`. */
export const AttributeDefSchema = z.strictObject({ name, type: z.enum(ATTRIBUTE_TYPES) });

/** A vertex reference: its type and primary id. */
export const VertexRefSchema = z.strictObject({ type: name, id: name });

/** Fields every event carries. */
const envelope = {
  /** Protocol version: always 1. */
  v: z.literal(PROTOCOL_VERSION),
  /** Event id, unique per event (a UUID); lets a consumer recognize a repeated event. */
  id: name,
  /** When the primary accepted the operation, ms since the Unix epoch (integer). */
  ts: z.number().int().nonnegative(),
  /** The primary's data generation the event was written in (a fencing token, non-negative). */
  epoch: z.number().int().nonnegative(),
  /** Cluster alias of the cluster whose writer produced the event. */
  origin: name,
};

/** One operation's schema: the envelope, `op`, and the operation's fields (which must not reuse an envelope name). */
const event = <Op extends string, S extends z.core.$ZodLooseShape>(op: Op, shape: S) => {
  const clash = Object.keys(shape).find((k) => k in envelope || k === 'op');
  if (clash) throw new TypeError(`protocol schema: ${op} reuses the envelope field "${clash}"`);
  return z.strictObject({ ...envelope, op: z.literal(op), ...shape });
};

// --- data operations: data topic, keyed by entity ---------------------------------------------
// A vertex is named by a reference `vertex: {type, id}` (as edge ends are), because the
// envelope's `id` is the event id.
const UpsertVertex = event('UPSERT_VERTEX', { vertex: VertexRefSchema, attributes: AttributesSchema });
const DeleteVertex = event('DELETE_VERTEX', { vertex: VertexRefSchema });
const UpsertEdge = event('UPSERT_EDGE', { type: name, from: VertexRefSchema, to: VertexRefSchema, attributes: AttributesSchema });
const DeleteEdge = event('DELETE_EDGE', { type: name, from: VertexRefSchema, to: VertexRefSchema });

// --- metadata operations: metadata topic ------------------------------------------------------
const attrs = z.array(AttributeDefSchema);
const CreateVertexType = event('CREATE_VERTEX_TYPE', { name, primaryIdType: z.enum(['STRING', 'INT', 'UINT']), attributes: attrs });
const AlterVertexType = event('ALTER_VERTEX_TYPE', { name, addAttributes: attrs.default([]), dropAttributes: z.array(name).default([]) });
const DropVertexType = event('DROP_VERTEX_TYPE', { name });
const CreateEdgeType = event('CREATE_EDGE_TYPE', { name, fromType: name, toType: name, directed: z.boolean(), attributes: attrs });
const AlterEdgeType = event('ALTER_EDGE_TYPE', { name, addAttributes: attrs.default([]), dropAttributes: z.array(name).default([]) });
const DropEdgeType = event('DROP_EDGE_TYPE', { name });
const CreateUser = event('CREATE_USER', { name, roles: z.array(name).default([]) });
const DropUser = event('DROP_USER', { name });
const GrantRole = event('GRANT_ROLE', { name, role: name });
const RevokeRole = event('REVOKE_ROLE', { name, role: name });
const CreateQuery = event('CREATE_QUERY', { name, text: text.min(1) });
const InstallQuery = event('INSTALL_QUERY', { name });
const DropQuery = event('DROP_QUERY', { name });
const CreateUdf = event('CREATE_UDF', { name, source: text.min(1) });
const DropUdf = event('DROP_UDF', { name });
const CreateLoadingJob = event('CREATE_LOADING_JOB', { name, text: text.min(1) });
const DropLoadingJob = event('DROP_LOADING_JOB', { name });

// --- sync-breaking markers: metadata topic ----------------------------------------------------
const reason = text.min(1);
const Import = event('IMPORT', { reason, source: text.min(1) });
const DropAll = event('DROP_ALL', { reason });
const ClearGraphStore = event('CLEAR_GRAPH_STORE', { reason });
const Reset = event('RESET', { reason });

/** A change event of protocol v1: a discriminated union on `op`. */
export const ChangeEventSchema = z.discriminatedUnion('op', [
  UpsertVertex,
  DeleteVertex,
  UpsertEdge,
  DeleteEdge,
  CreateVertexType,
  AlterVertexType,
  DropVertexType,
  CreateEdgeType,
  AlterEdgeType,
  DropEdgeType,
  CreateUser,
  DropUser,
  GrantRole,
  RevokeRole,
  CreateQuery,
  InstallQuery,
  DropQuery,
  CreateUdf,
  DropUdf,
  CreateLoadingJob,
  DropLoadingJob,
  Import,
  DropAll,
  ClearGraphStore,
  Reset,
]);

/** A validated change event (defaults filled in). */
export type ChangeEvent = z.infer<typeof ChangeEventSchema>;
/** The operation names. */
export type Op = ChangeEvent['op'];
/** The event of one operation, e.g. `EventOf<'UPSERT_VERTEX'>`. */
export type EventOf<O extends Op> = Extract<ChangeEvent, { op: O }>;
/** A vertex or edge operation (data topic). */
export type DataEvent = EventOf<'UPSERT_VERTEX' | 'DELETE_VERTEX' | 'UPSERT_EDGE' | 'DELETE_EDGE'>;
export type Attributes = z.infer<typeof AttributesSchema>;
export type AttributeDef = z.infer<typeof AttributeDefSchema>;

/** Every operation name, in protocol order. */
export const OPS = ChangeEventSchema.options.map((o) => o.shape.op.value) as Op[];

/** Sync-breaking markers: the stream alone cannot carry their effect; the store never applies them. */
export const MARKER_OPS = ['IMPORT', 'DROP_ALL', 'CLEAR_GRAPH_STORE', 'RESET'] as const satisfies readonly Op[];
/** Vertex and edge operations, the only ones on the data topic. */
export const DATA_OPS = ['UPSERT_VERTEX', 'DELETE_VERTEX', 'UPSERT_EDGE', 'DELETE_EDGE'] as const satisfies readonly Op[];

/** Kind of catalog entry a metadata operation acts on (the `kind` column of the store's catalog). */
export const CATALOG_KIND = {
  CREATE_VERTEX_TYPE: 'vertex_type',
  ALTER_VERTEX_TYPE: 'vertex_type',
  DROP_VERTEX_TYPE: 'vertex_type',
  CREATE_EDGE_TYPE: 'edge_type',
  ALTER_EDGE_TYPE: 'edge_type',
  DROP_EDGE_TYPE: 'edge_type',
  CREATE_USER: 'user',
  DROP_USER: 'user',
  GRANT_ROLE: 'user',
  REVOKE_ROLE: 'user',
  CREATE_QUERY: 'query',
  INSTALL_QUERY: 'query',
  DROP_QUERY: 'query',
  CREATE_UDF: 'udf',
  DROP_UDF: 'udf',
  CREATE_LOADING_JOB: 'loading_job',
  DROP_LOADING_JOB: 'loading_job',
} as const satisfies Record<Exclude<Op, (typeof DATA_OPS)[number] | (typeof MARKER_OPS)[number]>, string>;
export type CatalogKind = (typeof CATALOG_KIND)[keyof typeof CATALOG_KIND];
export type MetadataOp = keyof typeof CATALOG_KIND;
export type MarkerOp = (typeof MARKER_OPS)[number];

/** Whether `op` is a sync-breaking marker. */
export function isMarkerOp(op: Op): op is MarkerOp {
  return (MARKER_OPS as readonly string[]).includes(op);
}

/**
 * Which topic an operation goes to: `true` for metadata operations and sync-breaking markers
 * (the metadata topic, one partition, total order), `false` for vertex and edge operations (the
 * data topic, many partitions, keyed by entity). See docs/protocol.md "Topics".
 */
export function isMetadataOp(op: Op): boolean {
  return !(DATA_OPS as readonly string[]).includes(op);
}
