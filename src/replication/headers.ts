/**
 * Provenance headers crr adds to every mirrored record (names in the `crr.` namespace). Read by
 * replay (the upstream offset of a record on a replica), offset translation, and the mirror's
 * cycle rule under the identity policy. docs/glossary.md, "provenance headers".
 */

/** Header naming the cluster alias a mirrored record was copied from (one hop). */
export const HEADER_SOURCE_ALIAS = 'crr.source.alias';
/** Header with the record's offset on the source cluster (decimal string), for replay and offset translation. */
export const HEADER_UPSTREAM_OFFSET = 'crr.upstream.offset';
/** Header naming the cluster alias a record was first written to; set once under the identity policy and kept on every hop, to prevent cycles. */
export const HEADER_ORIGIN_ALIAS = 'crr.origin.alias';
/**
 * Header marking a record the mirror wrote itself: a sync-break marker (src/replication/sync-break.ts),
 * never a copy of a source record. Its value is the reason (`retention-gap`, `topic-recreated`).
 */
export const HEADER_SYNC_BREAK = 'crr.sync-break';
