// The imap plugin's settings (zod), with the environment variables that override them. Validated at
// boot by the plugin loader; everything else in the plugin trusts these values.
import { z } from 'zod';
import { GROUP_NAME } from '../../core/storage/types.ts';
import { notifyConfig } from './notify.ts';

const port = z.number().int().min(0).max(65535);

export const imapConfig = z.strictObject({
  /** Address both listeners bind to. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Plain port with STARTTLS (0 = any free port); null turns the listener off. */
  port: port.nullable().default(1143),
  /** Implicit TLS port (0 = any free port); null turns the listener off. */
  tlsPort: port.nullable().default(1993),
  /** Certificate and key (PEM files); both empty = the generated development certificate. Reloaded on SIGHUP. */
  tls: z.strictObject({ cert: z.string().default(''), key: z.string().default('') }).default({ cert: '', key: '' }),
  /** Allow LOGIN and AUTHENTICATE PLAIN before TLS (only for loopback setups). */
  allowPlaintext: z.boolean().default(false),
  /** Open connections over both listeners; more are greeted with BYE. */
  maxConnections: z.number().int().min(1).max(100000).default(2000),
  /** A folder with more messages than this is also offered as one child folder per year (0 = never). */
  splitByYearAbove: z.number().int().min(0).default(0),
  /** Users of these groups may use IMAP even without their own imapAccess flag. */
  accessGroups: z.array(z.string().regex(GROUP_NAME)).default([]),
  /** Seconds a connection may stay silent before logging in. */
  loginTimeoutSeconds: z.number().min(0.1).max(3600).default(60),
  /** Seconds a logged-in connection (also in IDLE) may stay silent; RFC 3501 asks for at least 30 minutes. */
  idleTimeoutSeconds: z.number().min(0.1).max(86400).default(1800),
  /** Longest command line (without literals). */
  maxLineBytes: z.number().int().min(1024).max(1024 * 1024).default(8192),
  /** Largest literal a client may send; larger synchronising literals are refused unread. */
  maxLiteralBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(64 * 1024),
  /** Largest command including its literals. */
  maxCommandBytes: z.number().int().min(4096).max(256 * 1024 * 1024).default(1024 * 1024),
  /** Recently used messages (IMAP data, at most 64 MiB) and headers (at most 32 MiB) kept in memory. */
  cacheMessages: z.number().int().min(0).max(1_000_000).default(10000),
  /** Original bytes of recently read messages (each up to 1 MiB) kept in memory for FETCH and SEARCH. */
  cacheBytes: z.number().int().min(0).max(16 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** Moved: failed logins are throttled by the top-level `signIn` section, shared with every sign-in path. */
  throttle: z.never({ error: 'moved to the top-level "signIn" section (one throttle for IMAP and the admin API)' }).optional(),
  /** Mail to a user when IMAP access is switched on for them (`postern user imap NAME on`). */
  notify: notifyConfig.prefault({}),
  /** Host name the notification tells users to connect to (default: smtp.hostname or this machine's name). */
  publicHost: z.string().default(''),
});

export type ImapConfig = z.output<typeof imapConfig>;

export const imapEnv = {
  POSTERN_IMAP_PORT: 'port',
  POSTERN_IMAPS_PORT: 'tlsPort',
  POSTERN_IMAP_HOST: 'host',
  POSTERN_IMAP_TLS_CERT: 'tls.cert',
  POSTERN_IMAP_TLS_KEY: 'tls.key',
  POSTERN_IMAP_ALLOW_PLAINTEXT: 'allowPlaintext',
  POSTERN_IMAP_MAX_CONNECTIONS: 'maxConnections',
};
