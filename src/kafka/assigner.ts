import type { PartitionAssigner } from 'kafkajs';
import { AssignerProtocol } from '../kafka/kafkajs.js';

/**
 * A partition assigner that gives every partition of every subscribed topic to ONE member of
 * the group, preferring the member that already owns them. It turns the source consumer group
 * into the lease of a flow: one process mirrors, any other process of the same flow joins the
 * group, gets no partitions and waits as a standby until the owner leaves or dies (session
 * timeout), as Kafka Connect spreads tasks with the group protocol.
 *
 * @param isActive tells, at each (re)join, whether this member currently owns the flow; sent
 *   as the member's user data so the group leader can keep the owner in place
 */
export function singleOwnerAssigner(isActive: () => boolean): PartitionAssigner {
  return ({ cluster }) => ({
    name: 'crr-single-owner',
    version: 1,
    protocol({ topics }) {
      return {
        name: 'crr-single-owner',
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.from(isActive() ? 'active' : 'standby') }),
      };
    },
    async assign({ members, topics }) {
      const ranked = members
        .map((m) => {
          const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
          return { memberId: m.memberId, active: meta?.userData?.toString() === 'active' };
        })
        .sort((a, b) => Number(b.active) - Number(a.active) || a.memberId.localeCompare(b.memberId));
      const owner = ranked[0]?.memberId;
      const assignment: Record<string, number[]> = {};
      for (const topic of topics) {
        assignment[topic] = cluster
          .findTopicPartitionMetadata(topic)
          .map((p) => p.partitionId)
          .sort((a, b) => a - b);
      }
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: m.memberId === owner ? assignment : {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
  });
}
