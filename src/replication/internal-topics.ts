/**
 * Names of the internal topics a flow keeps on its target cluster. Every name ends in
 * `.internal`, so MM2's default topic exclude `.*[-.]internal` keeps them out of every flow.
 */

/** Name of the positions topic on the target for a source alias (excluded by MM2's `.*[-.]internal`). */
export const positionsTopicName = (sourceAlias: string): string => `crr-offsets.${sourceAlias}.internal`;

/**
 * Name of the offset-syncs topic on the target for a source alias. MM2 names its topic
 * `mm2-offset-syncs.<targetAlias>.internal` and keeps it on the source by default
 * (`offset-syncs.topic.location`); crr keeps it on the target, because the syncs are written in
 * the target transaction that writes the records they describe. Excluded from mirroring by
 * MM2's `.*[-.]internal`.
 */
export const offsetSyncsTopicName = (sourceAlias: string): string => `crr-offset-syncs.${sourceAlias}.internal`;

/** MM2's checkpoints topic name, on the target cluster: `<sourceAlias>.checkpoints.internal`. */
export const checkpointsTopicName = (sourceAlias: string): string => `${sourceAlias}.checkpoints.internal`;
