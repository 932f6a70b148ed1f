import { z } from 'zod';

/** The HTTP server that serves /metrics, /healthz, /readyz and /status. */
export const HttpSchema = z.strictObject({
  /** Default true. */
  enabled: z.boolean().default(true),
  /** Interface to bind. Default `0.0.0.0` (Prometheus scrapes from another host). */
  host: z.string().default('0.0.0.0'),
  /** TCP port; 0 picks a free one. Default 9464 (the Prometheus exporter convention). */
  port: z.number().int().min(0).max(65535).default(9464),
});
