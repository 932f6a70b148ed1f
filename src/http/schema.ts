import { z } from 'zod';

/**
 * The HTTP server that serves /metrics, /healthz, /readyz and /status.
 *
 * Secure by default (issue 12, item 5): it binds the loopback interface unless told otherwise.
 * `tls` serves HTTPS; `bearerTokenFile` makes /status and /metrics require
 * `Authorization: Bearer <token>` (/healthz and /readyz stay open: probes carry no credentials,
 * and their bodies name states and errors, never a secret).
 */
export const HttpSchema = z.strictObject({
  /** Default true. */
  enabled: z.boolean().default(true),
  /**
   * Interface to bind. Default `127.0.0.1` (this host only). Set `0.0.0.0` (or the pod's
   * address) for a Prometheus on another host, with `tls` and `bearerTokenFile`.
   */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one. Default 9464 (the Prometheus exporter convention). */
  port: z.number().int().min(0).max(65535).default(9464),
  /** Serve HTTPS with this certificate (PEM, chain included) and its private key (PEM). Absent: plain HTTP. */
  tls: z
    .strictObject({
      certFile: z.string().min(1),
      keyFile: z.string().min(1),
    })
    .optional(),
  /**
   * A file holding the bearer token /status and /metrics require (surrounding whitespace is
   * ignored; a Kubernetes secret mount). Read at start (an unreadable or empty file stops crr,
   * exit 78) and again on each request, so a rotated token applies without a restart.
   * Prometheus sends it with `authorization: { credentials_file: ... }`. Absent: no auth.
   */
  bearerTokenFile: z.string().min(1).optional(),
});

/** The validated `http` config. */
export type HttpConfig = z.infer<typeof HttpSchema>;
