import type { z } from 'zod';
import { CrrError } from '../errors.js';
import { formatPath } from '../config/load.js';
import { ChangeEventSchema, isMarkerOp, CATALOG_KIND, type ChangeEvent, type MetadataOp } from './schema.js';

/** Kafka key of every sync-breaking marker: markers are not entities, and keep their order on the one metadata partition. */
export const MARKER_KEY = 'marker';

/**
 * The Kafka record key of an event: the key of the entity it changes, so that every change of
 * one entity lands on one partition of the data topic, in order. Parts are joined with `:` and
 * not escaped (a consumer never parses a key; it only compares and hashes it).
 *
 * - vertex operations: `v:<type>:<id>`
 * - edge operations: `e:<type>:<fromType>:<fromId>:<toType>:<toId>`
 * - metadata operations: `m:<kind>:<name>` with kind one of `vertex_type`, `edge_type`, `user`,
 *   `query`, `udf`, `loading_job` (see {@link CATALOG_KIND})
 * - sync-breaking markers: the fixed key {@link MARKER_KEY}
 */
export function eventKey(event: ChangeEvent): string {
  switch (event.op) {
    case 'UPSERT_VERTEX':
    case 'DELETE_VERTEX':
      return `v:${event.vertex.type}:${event.vertex.id}`;
    case 'UPSERT_EDGE':
    case 'DELETE_EDGE':
      return `e:${event.type}:${event.from.type}:${event.from.id}:${event.to.type}:${event.to.id}`;
    default:
      if (isMarkerOp(event.op)) return MARKER_KEY;
      return `m:${CATALOG_KIND[event.op as MetadataOp]}:${(event as { name: string }).name}`;
  }
}

/** Serializes an event as the UTF-8 JSON value of a record. The event is validated first. */
export function encodeEvent(event: ChangeEvent): Buffer {
  return Buffer.from(JSON.stringify(parseEvent(event)), 'utf8');
}

/**
 * Decodes the value of a change-topic record.
 *
 * @param value the record value: UTF-8 JSON of one event of protocol v1 (docs/protocol.md)
 * @returns the validated event, with defaults filled in
 * @throws CrrError CRR_EVENT_INVALID when the value is missing, not JSON, or not a valid event;
 *   the message lists each problem as `path: what was expected` (`attributes.age: expected ...`,
 *   `op: unknown operation "FOO"`), and the `issues` property holds them as `{ path, message }`
 */
export function decodeEvent(value: Buffer | Uint8Array | string | null): ChangeEvent {
  if (value === null || value === undefined) throw new CrrError('CRR_EVENT_INVALID', 'change event has no value (a tombstone)');
  const text = typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new CrrError('CRR_EVENT_INVALID', `change event is not JSON (${(cause as Error).message}): ${text.slice(0, 100)}`, { cause });
  }
  return parseEvent(raw);
}

/**
 * Validates an already-parsed event.
 * @throws CrrError CRR_EVENT_INVALID as {@link decodeEvent}
 */
export function parseEvent(raw: unknown): ChangeEvent {
  const result = ChangeEventSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: formatPath(i.path), message: describeIssue(i) }));
  const id = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? ` ${(raw as { id: string }).id}` : '';
  throw new CrrError('CRR_EVENT_INVALID', `invalid change event${id}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
    context: { issues },
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_type':
      return input === undefined ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${typeName(input)}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${JSON.stringify(input) ?? 'nothing'}`;
    case 'invalid_union':
      if ((issue as { discriminator?: string }).discriminator === 'op') {
        return input && typeof input === 'object' && 'op' in input
          ? `unknown operation ${JSON.stringify((input as { op: unknown }).op)}`
          : 'missing (expected the operation name)';
      }
      return issue.message;
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'expected a non-empty string';
      return `expected ${issue.origin} ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}, got ${JSON.stringify(input)}`;
    default:
      return issue.message;
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && !Number.isInteger(v)) return `number ${v}`;
  return typeof v;
}
