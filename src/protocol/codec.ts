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
  const attributes = raw && typeof raw === 'object' ? (raw as { attributes?: unknown }).attributes : undefined;
  // zod drops a record key `__proto__` without an issue: refuse it rather than lose the attribute
  const issues =
    result.success && attributes && typeof attributes === 'object' && Object.hasOwn(attributes, '__proto__')
      ? [{ path: 'attributes.__proto__', message: 'reserved name: an attribute cannot be called "__proto__"' }]
      : result.success
        ? []
        : result.error.issues.map((i) => ({ path: clip(formatPath(i.path)), message: describeIssue(i) }));
  if (result.success && issues.length === 0) return result.data;
  const id = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? ` ${clip((raw as { id: string }).id)}` : '';
  throw new CrrError('CRR_EVENT_INVALID', `invalid change event${id}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
    context: { issues },
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${clip(k)}"`).join(', ')}`;
    case 'invalid_type':
      return input === undefined ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${typeName(input)}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${preview(input)}`;
    case 'invalid_union':
      if ((issue as { discriminator?: string }).discriminator === 'op') {
        return input && typeof input === 'object' && 'op' in input
          ? `unknown operation ${preview((input as { op: unknown }).op)}`
          : 'missing (expected the operation name)';
      }
      return issue.message;
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'expected a non-empty string';
      return `expected ${issue.origin} ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}, got ${preview(input)}`;
    default:
      return issue.message;
  }
}

/** Longest rendering of an offending value in a message, characters. */
const PREVIEW_CHARS = 100;

/**
 * A value as JSON for a message, cut at {@link PREVIEW_CHARS} (a 1 MiB string is not copied into
 * every log line), and never throwing: a value nested too deep for JSON.stringify's stack is
 * named by its type.
 */
function preview(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(clip(v));
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    return typeName(v);
  }
  if (text === undefined) return 'nothing';
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}

/** A string cut at {@link PREVIEW_CHARS}, marked with `…` when cut. */
function clip(s: string): string {
  return s.length > PREVIEW_CHARS ? `${s.slice(0, PREVIEW_CHARS)}…` : s;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && !Number.isInteger(v)) return `number ${v}`;
  return typeof v;
}
