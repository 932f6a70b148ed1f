/**
 * Checkpoints and offset translation (MM2's MirrorCheckpointConnector and OffsetSyncStore):
 * the library surface used by `crr checkpoints` and `crr promote`.
 */
export { syncGroupOffsetsOnce, commitToTargetGroups, type GroupOffsetSyncRow, type GroupSyncResult } from './group-offset-sync.js';
export { translateFlow, translateSourceGroups, type FlowTranslation, type GroupOffsetRow } from './translate.js';
export { OffsetSyncStore, readOffsetSyncs, type Translation } from './offset-sync-store.js';
export { readCheckpoints, type Checkpoint } from './checkpoint.js';
export { checkpointsTopicName } from '../replication/internal-topics.js';
