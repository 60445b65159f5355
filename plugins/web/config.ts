// The web plugin's settings (zod), with the environment variables that override them. Validated at
// boot by the plugin loader (a non-loopback host without TLS is refused here, so `postern config check`
// names the line); everything else in the plugin trusts these values.
import { z } from 'zod';
import { GROUP_NAME } from '../../core/storage/types.ts';
import { isLoopback } from '../../core/config/host-port.ts';

export const webConfig = z.strictObject({
  /** Address the listener binds to; anything but loopback needs tls.enabled. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Port (0 = any free port). */
  port: z.number().int().min(0).max(65535).default(9080),
  /**
   * HTTPS on the one listener. Certificate and key as PEM files (re-read on SIGHUP); both empty =
   * the generated development certificate in <dataDir>/tls, as for IMAP.
   */
  tls: z.strictObject({
    enabled: z.boolean().default(false),
    cert: z.string().default(''),
    key: z.string().default(''),
  }).default({ enabled: false, cert: '', key: '' }),
  /** Users of these groups may use the web access without their own webAccess flag. */
  accessGroups: z.array(z.string().regex(GROUP_NAME)).default([]),
  /** A session unused this long ends (the next request shows "session expired"). */
  idleTimeoutMinutes: z.number().min(1).max(24 * 60).default(30),
  /** A session ends this long after sign-in, however busy. */
  absoluteTimeoutHours: z.number().min(0.1).max(24 * 7).default(12),
  /** Sessions kept at once; past this the least recently used one ends. */
  maxSessions: z.number().int().min(1).max(1_000_000).default(10000),
  /** Open connections at once. */
  maxConnections: z.number().int().min(1).max(100000).default(500),
  /** Search hits and folder entries per page. */
  pageSize: z.number().int().min(5).max(500).default(50),
  /** Messages larger than this are not parsed for display (headers, captures and the .eml download only). */
  maxViewBytes: z.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(32 * 1024 * 1024),
}).superRefine((c, ctx) => {
  if (!isLoopback(c.host) && !c.tls.enabled) {
    ctx.addIssue({
      code: 'custom', path: ['host'],
      message: `web host "${c.host}" is not loopback; set tls.enabled: true (with tls.cert and tls.key) to listen there`,
    });
  }
  if ((c.tls.cert === '') !== (c.tls.key === '')) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'TLS needs both "cert" and "key", or neither (the development certificate)' });
  }
});

export type WebConfig = z.output<typeof webConfig>;

export const webEnv = {
  POSTERN_WEB_PORT: 'port',
  POSTERN_WEB_HOST: 'host',
  POSTERN_WEB_TLS: 'tls.enabled',
  POSTERN_WEB_TLS_CERT: 'tls.cert',
  POSTERN_WEB_TLS_KEY: 'tls.key',
};
