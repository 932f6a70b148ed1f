/**
 * KafkaJS is a CommonJS package whose named exports Node's ESM loader cannot detect; its
 * runtime values are taken from the default export here. Types still come from 'kafkajs'.
 */
import kafkajs from 'kafkajs';

// crr always names the partition of a record it writes, so KafkaJS's partitioner notice does not apply.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

export const { Kafka, CompressionCodecs, CompressionTypes, ConfigResourceTypes, AssignerProtocol, logLevel } = kafkajs;
