/**
 * KafkaJS is a CommonJS package whose named exports Node's ESM loader cannot detect; its
 * runtime values are taken from the default export here. Types still come from 'kafkajs'.
 */
import kafkajs from 'kafkajs';

export const { Kafka, CompressionCodecs, CompressionTypes, ConfigResourceTypes, AssignerProtocol, logLevel } = kafkajs;
