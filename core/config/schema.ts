// The configuration schema: every key, its type, bounds and default. The loader validates the YAML
// file and environment overrides against it; everything downstream trusts the resulting Config type.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const bytes = z.number().int().min(1);

const tls = z.strictObject({
  cert: z.string().default(''),
  key: z.string().default(''),
});

export const smtpAuthSchema = z.strictObject({
  mode: z.enum(['none', 'optional', 'required']).default('none'),
  users: z.record(z.string().regex(/^[^\s:]+$/), z.string().regex(/^scrypt\$/, 'must be a hash from "postern config hash-password"')).default({}),
  allowInsecure: z.boolean().default(false),
});

const smtpSchema = z.strictObject({
    enabled: z.boolean().default(true),
    host: host.default('127.0.0.1'),
    port: port.default(2525),
    hostname: z.string().default(''),
    maxMessageSize: bytes.default(50 * 1024 * 1024),
    maxRecipients: z.number().int().min(1).max(100000).default(1000),
    maxConnections: z.number().int().min(1).max(100000).default(200),
    idleTimeoutSeconds: z.number().min(1).max(3600).default(300),
    earlyTalkerDelayMs: z.number().int().min(0).max(10000).default(0),
    bareLineEndings: z.enum(['accept', 'reject']).default('accept'),
    tls: tls.default({ cert: '', key: '' }),
    auth: smtpAuthSchema.default({ mode: 'none', users: {}, allowInsecure: false }),
  });
const adminSchema = z.strictObject({
    host: host.default('127.0.0.1'),
    port: port.default(9025),
    tls: tls.default({ cert: '', key: '' }),
    metricsRequireToken: z.boolean().default(false),
  });
const intakeSchema = z.strictObject({
    inlineMaxBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
    activeWindow: z.number().int().min(1).max(4096).default(32),
    maxAttempts: z.number().int().min(1).max(1000).default(15),
    retryBaseSeconds: z.number().min(0.01).max(86400).default(5),
    retryMaxSeconds: z.number().min(0.01).max(604800).default(3600),
  });
export const ROUTING_SOURCES = [
  'smtp-envelope', 'x-gm-original-to', 'x-original-to', 'delivered-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to',
  'received-for', 'to-cc-from-guess',
] as const;
export type RoutingSource = (typeof ROUTING_SOURCES)[number];

const routingSchema = z.strictObject({
    receivedFolder: z.string().min(1).default('Inbox'),
    sentFolder: z.string().min(1).default('Sent'),
    unmatchedUser: z.string().regex(/^[a-z0-9_][a-z0-9._-]{0,63}$/).default('_unrouted'),
    unknownAddresses: z.enum(['ignore', 'unassigned', 'create']).default('ignore'),
    autoCreateDomains: z.array(z.string().min(1)).default([]),
    localPartCase: z.enum(['insensitive', 'sensitive']).default('insensitive'),
    subaddressSeparator: z.string().max(1).default('+'),
    journalAddresses: z.array(z.string().min(3)).default([]),
    sources: z.array(z.enum(ROUTING_SOURCES)).min(1).default(['smtp-envelope', 'x-gm-original-to', 'x-original-to', 'delivered-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to']),
    deliveredToSkip: z.number().int().min(0).max(20).default(0),
    trustedReceivedHosts: z.array(z.string().min(1)).default([]),
  });

const seedUserSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
  addresses: z.array(z.string().min(3)).default([]),
  domains: z.array(z.string().min(1)).default([]),
  pop3Users: z.array(z.string().min(1)).default([]),
});

const storageSchema = z.strictObject({
    /** Blob compression at rest: codec, level, and the size below which chunks are stored raw. */
    compression: z.strictObject({
      codec: z.enum(['none', 'deflate', 'brotli']).default('brotli'),
      level: z.number().int().min(0).max(11).default(5),
      minSize: z.number().int().min(0).default(256),
    }).default({ codec: 'brotli', level: 5, minSize: 256 }),
    /** A file holding a 256-bit key (64 hex characters): blobs are then sealed with AES-256-GCM. */
    encryptionKeyFile: z.string().default(''),
  });

export const configSchema = z.strictObject({
  dataDir: z.string().min(1).default('./data'),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  }).default({ level: 'info', format: 'auto' }),
  smtp: smtpSchema.default(() => smtpSchema.parse({})),
  admin: adminSchema.default(() => adminSchema.parse({})),
  intake: intakeSchema.default(() => intakeSchema.parse({})),
  storage: storageSchema.default(() => storageSchema.parse({})),
  routing: routingSchema.default(() => routingSchema.parse({})),
  hooks: z.strictObject({
    timeoutMs: z.number().int().min(10).max(600000).default(10000),
  }).default({ timeoutMs: 10000 }),
  shutdown: z.strictObject({
    graceSeconds: z.number().min(0).max(600).default(20),
  }).default({ graceSeconds: 20 }),
  users: z.array(seedUserSchema).default([]),
  plugins: z.array(z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    config: z.record(z.string(), z.unknown()).default({}),
  })).default([]),
});

export type Config = z.infer<typeof configSchema>;
export type PluginEntry = Config['plugins'][number];

/** The configuration with every default applied and nothing set. */
export function defaultConfig(): Config {
  return configSchema.parse({});
}
