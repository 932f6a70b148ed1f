/**
 * KafkaJS is a CommonJS package whose named exports Node's ESM loader cannot detect; its
 * runtime values are taken from the default export here. Types still come from 'kafkajs'.
 */
import kafkajs from 'kafkajs';

// The mirror names the partition of every record; the writer passes KafkaJS 2's default (Java-compatible murmur2) partitioner explicitly: the notice does not apply.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

export const { Kafka, CompressionCodecs, CompressionTypes, ConfigResourceTypes, AssignerProtocol, Partitioners, logLevel } = kafkajs;
