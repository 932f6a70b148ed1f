import type { IHeaders, Message } from 'kafkajs';
import { HEADER_SOURCE_ALIAS, HEADER_SYNC_BREAK, HEADER_UPSTREAM_OFFSET } from './headers.js';

/**
 * Sync-break markers (docs/glossary.md, "sync-break marker"): records the mirror writes itself on
 * a remote topic partition, in the same target transaction that moves its position past a sync
 * break, so that whichever process replays the replica meets the break in order, even when the
 * mirror and replay run in separate processes or the replica's store is down at that moment.
 *
 * - `retention-gap`: source records were deleted before they were mirrored; the marker stands
 *   before the first record after the gap, and its `crr.upstream.offset` is that record's offset.
 * - `topic-recreated`: the source topic is a new incarnation (another topic id, KIP-516), or its
 *   log end fell below the mirrored position; the marker stands before the new incarnation's
 *   first record, and the mirror's position records the marker's downstream offset, so a
 *   reseeded replica replays that partition from past it (records before it belong to the old
 *   incarnation, whose upstream offsets mean nothing in the new one).
 */
export type SyncBreakReason = 'retention-gap' | 'topic-recreated';

/** The JSON value of a sync-break marker. */
export interface SyncBreakMarker {
  syncBreak: SyncBreakReason;
  /** One line for operators: where and how much. */
  detail: string;
  /** Source topic and partition. */
  topic: string;
  partition: number;
  /** The source topic's id (UUID) after the break, when known. */
  topicId?: string;
  /** The upstream offset the mirror resumes at (the first record after the marker). */
  resumeAt: number;
}

/** Builds a marker record for `remoteTopic` partition `marker.partition`. */
export function syncBreakMessage(sourceAlias: string, marker: SyncBreakMarker): Message {
  return {
    key: null,
    value: Buffer.from(JSON.stringify(marker)),
    partition: marker.partition,
    headers: { [HEADER_SYNC_BREAK]: marker.syncBreak, [HEADER_SOURCE_ALIAS]: sourceAlias, [HEADER_UPSTREAM_OFFSET]: String(marker.resumeAt) },
  };
}

/**
 * The reason of a record's `crr.sync-break` header, or `undefined` for any other record. A header
 * with another value is still a marker (a newer crr's reason): it is returned as written.
 */
export function syncBreakReason(headers: IHeaders | undefined): string | undefined {
  const raw = headers?.[HEADER_SYNC_BREAK];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined ? undefined : value.toString().slice(0, 100);
}

/** The marker's `detail`, or a stand-in when the value is not a marker's JSON. Never throws. */
export function syncBreakDetail(value: Buffer | null): string {
  try {
    const v = JSON.parse(value?.toString('utf8') ?? '') as Partial<SyncBreakMarker>;
    if (typeof v.detail === 'string') return v.detail.slice(0, 1000);
  } catch {
    // fall through
  }
  return 'a sync-break marker without a readable detail';
}
