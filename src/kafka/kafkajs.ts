/**
 * KafkaJS is a CommonJS package whose named exports Node's ESM loader cannot detect; its
 * runtime values are taken from the default export here. Types still come from 'kafkajs'.
 */
import kafkajs from 'kafkajs';

// The mirror names the partition of every record; the writer passes KafkaJS 2's default (Java-compatible murmur2) partitioner explicitly: the notice does not apply.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

export const { Kafka, CompressionCodecs, CompressionTypes, ConfigResourceTypes, AssignerProtocol, Partitioners, logLevel } = kafkajs;

/**
 * The codes of a TLS certificate that failed verification: Node's `tls` codes (OpenSSL's
 * `X509_V_ERR_*` names without the prefix, and `ERR_TLS_CERT_ALTNAME_INVALID` for a certificate
 * that does not name the host). KafkaJS copies the socket error's code into its
 * KafkaJSConnectionError (`code`).
 */
export const TLS_CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The codes of a TLS alert a broker sent because of the client's certificate (Node's
 * `ERR_SSL_*_ALERT_*` codes of the alert received, RFC 8446 section 6.2): a listener with
 * `ssl.client.auth=required` (mTLS) answers a missing client certificate with `bad_certificate`
 * (42; Kafka's JSSE, seen with Kafka 4.3) or `certificate_required` (116), and a certificate its
 * truststore does not trust with `certificate_unknown` (46) or `unknown_ca` (48). Under TLS 1.3
 * the alert arrives after the client's handshake finished, on its first request.
 */
export const TLS_CLIENT_CERTIFICATE_REFUSED_CODES: ReadonlySet<string> = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
]);

// KafkaJS retries every connection error (5 times over ~8 s with crr's retry options, and again
// in each retrying caller), a broker certificate that fails verification too, which no retry
// cures, and a client certificate the broker refused (or its absence). Such an error is made not
// retriable, so a command fails at the first attempt; crr's own supervisors (the mirror's
// backoff) still restart, so a corrected CA or certificate file is picked up. KafkaJS
// sets `retriable` in KafkaJSError's constructor: an accessor on KafkaJSConnectionError's
// prototype receives that assignment and answers false for a certificate error's code (either set).
Object.defineProperty(kafkajs.KafkaJSConnectionError.prototype, 'retriable', {
  configurable: true,
  get(this: { code?: string; crrRetriable?: boolean }): boolean {
    return this.code !== undefined && (TLS_CERTIFICATE_ERROR_CODES.has(this.code) || TLS_CLIENT_CERTIFICATE_REFUSED_CODES.has(this.code))
      ? false
      : (this.crrRetriable ?? true);
  },
  set(this: object, value: boolean) {
    Object.defineProperty(this, 'crrRetriable', { value, writable: true, configurable: true, enumerable: false });
  },
});
