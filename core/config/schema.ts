// The configuration schema: every key, its type, bounds and default. The loader validates the YAML
// file and environment overrides against it; everything downstream trusts the resulting Config type.
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { PRIVILEGES } from '../storage/types.ts';

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
/** The POP3 proxy (core/pop3): clients retrieve through Postern from the upstream; every RETR is captured. */
export const pop3Schema = z.strictObject({
    enabled: z.boolean().default(true),
    host: host.default('127.0.0.1'),
    port: port.default(1110),
    /** Implicit-TLS (POP3S) listener; 0 disables it. */
    tlsPort: port.default(1995),
    /** "host:port" of the real POP3 server; empty disables the proxy. */
    upstream: z.string().regex(/^$|^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d{1,5}$/, 'must be "host:port" (or empty to disable)').default(''),
    upstreamTls: z.enum(['none', 'starttls', 'implicit']).default('none'),
    upstreamCa: z.string().default(''),
    upstreamVerify: z.boolean().default(true),
    tls: tls.default({ cert: '', key: '' }),
    maxConnections: z.number().int().min(1).max(100000).default(200),
    idleTimeoutSeconds: z.number().min(1).max(3600).default(600),
    upstreamTimeoutSeconds: z.number().min(1).max(3600).default(60),
    maxLineLength: z.number().int().min(64).max(65536).default(4096),
    maxMessageSize: bytes.default(50 * 1024 * 1024),
    /** USER/PASS and AUTH on a connection without TLS: false allows them only from loopback clients. */
    allowPlaintextAuth: z.boolean().default(false),
  });
/** The SMTP relay proxy (core/smtp/relay-listener.ts): clients send through Postern to `upstream`. */
const relaySchema = z.strictObject({
    enabled: z.boolean().default(true),
    host: host.default('127.0.0.1'),
    port: port.default(2587),
    hostname: z.string().default(''),
    /** "host:port" of the real SMTP server; empty disables the relay (logged at start). */
    upstream: z.string().regex(/^$|^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be "host:port" (or empty to disable the relay)').default(''),
    /** auto = plain to a loopback upstream, STARTTLS (required) to any other. */
    upstreamTls: z.enum(['auto', 'none', 'starttls', 'implicit']).default('auto'),
    upstreamTlsVerify: z.boolean().default(true),
    upstreamCa: z.string().default(''),
    upstreamServername: z.string().default(''),
    /** Idle upstream sessions (unauthenticated, between transactions) kept for the next client; 0 = none. */
    upstreamPoolSize: z.number().int().min(0).max(1000).default(16),
    auth: z.strictObject({
      mode: z.enum(['passthrough', 'local', 'none']).default('passthrough'),
      allowInsecure: z.boolean().default(false),
    }).default({ mode: 'passthrough', allowInsecure: false }),
    requireArchive: z.boolean().default(true),
    maxMessageSize: bytes.default(50 * 1024 * 1024),
    maxRecipients: z.number().int().min(1).max(100000).default(1000),
    maxConnections: z.number().int().min(1).max(100000).default(100),
    idleTimeoutSeconds: z.number().min(1).max(3600).default(300),
    earlyTalkerDelayMs: z.number().int().min(0).max(10000).default(0),
    connectTimeoutSeconds: z.number().min(0.1).max(600).default(15),
    commandTimeoutSeconds: z.number().min(0.1).max(3600).default(60),
    dataTimeoutSeconds: z.number().min(0.1).max(3600).default(600),
    tls: tls.default({ cert: '', key: '' }),
  });
const adminSchema = z.strictObject({
    host: host.default('127.0.0.1'),
    port: port.default(9025),
    tls: tls.default({ cert: '', key: '' }),
    metricsRequireToken: z.boolean().default(false),
    /** Hours an API session token (POST /api/v1/sessions, `postern login`) is valid. */
    sessionHours: z.number().min(0.01).max(24 * 30).default(12),
  });
const intakeSchema = z.strictObject({
    inlineMaxBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
    /** Entries archived at once (their steps overlap: analysis, the group commit, the intake removal). */
    activeWindow: z.number().int().min(1).max(4096).default(128),
    /** Bytes of in-memory (inline) entries archived at once; another starts only below it (or when none runs). */
    maxRunningBytes: z.number().int().min(1024 * 1024).max(16 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
    maxAttempts: z.number().int().min(1).max(1000).default(15),
    retryBaseSeconds: z.number().min(0.01).max(86400).default(5),
    retryMaxSeconds: z.number().min(0.01).max(604800).default(3600),
    /** Archiving yields to arriving mail for at most this long per entry (0: archive at once). */
    archiveMaxLagMs: z.number().int().min(0).max(600000).default(10000),
    /** Arrivals count as a burst while the previous one is less than this many ms ago. */
    archiveQuietMs: z.number().int().min(1).max(10000).default(20),
    /** Worker threads that analyse messages (parsing, journal unwrapping, plugin analyzers); default: one per core, at most 4. */
    analysisWorkers: z.number().int().min(1).max(64).default(() => Math.min(4, Math.max(1, availableParallelism()))),
    /** A message whose analysis takes longer is archived raw-only, flagged, and its entry quarantined. */
    analysisTimeoutSeconds: z.number().min(0.1).max(3600).default(60),
    /** Heap limit of each analysis worker; a message that needs more is treated as above. */
    analysisMemoryMb: z.number().int().min(32).max(16384).default(512),
  });
export const ROUTING_SOURCES = [
  'smtp-envelope', 'x-gm-original-to', 'x-original-to', 'delivered-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to',
  'received-for', 'to-cc-from-guess',
] as const;
export type RoutingSource = (typeof ROUTING_SOURCES)[number];
/**
 * Real envelopes first (the SMTP transaction, then headers delivering MTAs add); To/Cc/From last, so a
 * copy that carries no envelope of its own (an always_bcc copy addressed only to a journal address, an
 * imported mailbox) is still attributed. Journal reports come before all of these.
 */
export const DEFAULT_ROUTING_SOURCES: RoutingSource[] = [
  'smtp-envelope', 'x-gm-original-to', 'x-original-to', 'delivered-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to', 'to-cc-from-guess',
];

const routingSchema = z.strictObject({
    receivedFolder: z.string().min(1).default('Inbox'),
    sentFolder: z.string().min(1).default('Sent'),
    unmatchedUser: z.string().regex(/^[a-z0-9_][a-z0-9._-]{0,63}$/).default('_unrouted'),
    unknownAddresses: z.enum(['ignore', 'unassigned', 'create']).default('ignore'),
    autoCreateDomains: z.array(z.string().min(1)).default([]),
    localPartCase: z.enum(['insensitive', 'sensitive']).default('insensitive'),
    subaddressSeparator: z.string().max(1).default('+'),
    journalAddresses: z.array(z.string().min(3)).default([]),
    sources: z.array(z.enum(ROUTING_SOURCES)).min(1).default(() => [...DEFAULT_ROUTING_SOURCES]),
    deliveredToSkip: z.number().int().min(0).max(20).default(0),
    trustedReceivedHosts: z.array(z.string().min(1)).default([]),
  });

const seedUserSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
  addresses: z.array(z.string().min(3)).default([]),
  domains: z.array(z.string().min(1)).default([]),
  pop3Users: z.array(z.string().min(1)).default([]),
  groups: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)).default([]),
});

const retentionNames = z.array(z.string().min(1).max(320)).min(1).max(1000);
const complianceSchema = z.strictObject({
    /** Retention rules (read-only here; `postern policy add` keeps more in the archive). */
    policies: z.array(z.strictObject({
      name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      match: z.strictObject({
        users: retentionNames.optional(), groups: retentionNames.optional(), addresses: retentionNames.optional(),
        domains: retentionNames.optional(), folders: retentionNames.optional(), direction: z.enum(['received', 'sent']).optional(),
      }).default({}),
      minimum: z.string().regex(/^(\d{1,4}[dwmy]|forever)$/, 'must be like "30d", "6w", "18m", "7y" or "forever"'),
      maximum: z.string().regex(/^\d{1,4}[dwmy]$/, 'must be like "30d", "6w", "18m" or "10y"').optional(),
    })).default([]),
    /** Hold every archived entry (no deletion or purge at all), whatever the stored switch says. */
    holdEverything: z.boolean().default(false),
    /** Administrators see only from/to/subject/date of other users' mail through the API, never bodies. */
    previewBlocking: z.boolean().default(false),
    /** Run the purge as the job "retention-purge" on this schedule (cron or "1d"); null: only on demand. */
    purgeSchedule: z.string().min(1).nullable().default(null),
    purgeBatchSize: z.number().int().min(1).max(10000).default(500),
  });

const signInSchema = z.strictObject({
    /** Attempts per account without waiting, before spacing starts. */
    burst: z.number().int().min(1).max(1000).default(5),
    /** Attempts per client address without waiting (higher: many users may share one address). */
    addressBurst: z.number().int().min(1).max(100000).default(20),
    /** Spacing after the burst, doubling per further failure; 0 turns throttling off. */
    baseDelayMs: z.number().int().min(0).max(60000).default(500),
    maxDelayMs: z.number().int().min(0).max(3600000).default(15000),
    /** Longest an attempt is held for its slot; one further ahead is refused at once (HTTP 429, IMAP a delayed NO). */
    maxWaitMs: z.number().int().min(0).max(600000).default(10000),
    /** Failures are forgotten this long after the last one. */
    windowSeconds: z.number().int().min(1).max(86400).default(900),
    /** Accounts and addresses tracked at most (the oldest are forgotten first). */
    maxTracked: z.number().int().min(10).max(1_000_000).default(10000),
  });

/** LDAP / Active Directory: where the directory sync (core/directory) reads accounts, and where directory sign-in binds. */
export const ldapSchema = z.strictObject({
    url: z.string().regex(/^ldaps?:\/\/(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+)(:\d{1,5})?\/?$/, 'must be "ldap://host:port" or "ldaps://host:port"'),
    /** Upgrade an ldap:// connection with StartTLS before binding. */
    startTls: z.boolean().default(false),
    /** PEM file of the CA that signed the server's certificate (ldaps:// and startTls); empty: the system CAs. */
    caFile: z.string().default(''),
    tlsVerify: z.boolean().default(true),
    /** The account the sync binds as (empty: anonymous); its password from passwordFile or passwordEnv, never the config. */
    bindDn: z.string().default(''),
    passwordFile: z.string().default(''),
    passwordEnv: z.string().regex(/^$|^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').default(''),
    baseDn: z.string().min(1),
    userFilter: z.string().min(3).default('(&(objectClass=user)(!(objectClass=computer)))'),
    groupFilter: z.string().min(3).default('(|(objectClass=group)(objectClass=groupOfNames))'),
    /** Where groups are searched; empty: baseDn. */
    groupBaseDn: z.string().default(''),
    /** Directory attributes: account name, display name, mail addresses (proxyAddresses "smtp:" values too), group DNs, stable id. */
    attributes: z.strictObject({
      name: z.string().min(1).default('sAMAccountName'),
      fullName: z.string().min(1).default('displayName'),
      addresses: z.array(z.string().min(1)).min(1).default(['mail', 'proxyAddresses']),
      groups: z.string().min(1).default('memberOf'),
      id: z.string().min(1).default('objectGUID'),
      groupName: z.string().min(1).default('cn'),
      groupMembers: z.string().min(1).default('member'),
    }).default({ name: 'sAMAccountName', fullName: 'displayName', addresses: ['mail', 'proxyAddresses'], groups: 'memberOf', id: 'objectGUID', groupName: 'cn', groupMembers: 'member' }),
    /** How many levels of groups within groups are followed (cycles are cut). */
    nestedGroupDepth: z.number().int().min(0).max(32).default(8),
    timeoutSeconds: z.number().min(1).max(600).default(15),
    /** Run the sync as the job "directory-sync" on this schedule (cron or "1h"); null: only on demand. */
    schedule: z.string().min(1).nullable().default(null),
    /** What users created by the sync get besides their directory groups. */
    newUsers: z.strictObject({
      privileges: z.array(z.enum(PRIVILEGES)).default([]),
      groups: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)).default([]),
      imapAccess: z.boolean().default(false),
      webAccess: z.boolean().default(false),
    }).default({ privileges: [], groups: [], imapAccess: false, webAccess: false }),
    /** Users gone from the directory: disabled (kept, no sign-in) or removed from the user list. Their archives always stay. */
    removed: z.enum(['disable', 'remove']).default('disable'),
  }).refine((l) => l.passwordFile === '' || l.passwordEnv === '', 'set passwordFile or passwordEnv, not both')
  .refine((l) => l.bindDn === '' || l.passwordFile !== '' || l.passwordEnv !== '', 'bindDn needs passwordFile or passwordEnv');

const storageSchema = z.strictObject({
    /** Blob compression at rest: codec, level, and the size below which chunks are stored raw. */
    compression: z.strictObject({
      codec: z.enum(['none', 'deflate', 'brotli']).default('brotli'),
      level: z.number().int().min(0).max(11).default(5),
      minSize: z.number().int().min(0).default(256),
    }).default({ codec: 'brotli', level: 5, minSize: 256 }),
    /** A file holding a 256-bit key (64 hex characters): blobs are then sealed with AES-256-GCM. */
    encryptionKeyFile: z.string().default(''),
    /**
     * Where the archive lives: `rocksdb` (embedded, in dataDir/archive) or `postgres-s3` (records in
     * PostgreSQL, message bytes in an S3 bucket with Object Lock; several nodes may share it).
     */
    backend: z.enum(['rocksdb', 'postgres-s3']).default('rocksdb'),
    /** This node's name in a shared archive (postern status); default: the host name. */
    node: z.string().regex(/^[A-Za-z0-9._-]{0,64}$/, 'letters, digits, ".", "_" and "-" (at most 64)').default(''),
    postgres: z.strictObject({
      /** postgres://user@host:port/database (a password here is allowed but passwordFile keeps it out of the file). */
      url: z.string().default(''),
      /** A file holding the password (used when the URL has none). */
      passwordFile: z.string().default(''),
      poolSize: z.number().int().min(2).max(100).default(8),
    }).default({ url: '', passwordFile: '', poolSize: 8 }),
    s3: z.strictObject({
      /** http(s)://host:port of the S3-compatible store (Ceph RGW, MinIO, AWS: https://s3.<region>.amazonaws.com). */
      endpoint: z.string().default(''),
      region: z.string().min(1).default('us-east-1'),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 lower-case letters, digits, "." and "-")').default('postern-archive'),
      accessKeyId: z.string().default(''),
      /** A file holding the secret access key. */
      secretAccessKeyFile: z.string().default(''),
      /** Path-style URLs (http://host/bucket/key), as RGW and MinIO on one host need. */
      forcePathStyle: z.boolean().default(true),
      /** Create the bucket, with Object Lock, when it does not exist. */
      createBucket: z.boolean().default(true),
      timeoutSeconds: z.number().min(1).max(600).default(30),
    }).default({ endpoint: '', region: 'us-east-1', bucket: 'postern-archive', accessKeyId: '', secretAccessKeyFile: '', forcePathStyle: true, createBucket: true, timeoutSeconds: 30 }),
  }).superRefine((s, ctx) => {
    if (s.backend !== 'postgres-s3') return;
    const need: Array<[string[], string, string]> = [
      [['postgres', 'url'], s.postgres.url, 'storage.backend postgres-s3 needs a postgres:// URL'],
      [['s3', 'endpoint'], s.s3.endpoint, 'storage.backend postgres-s3 needs the S3 endpoint'],
      [['s3', 'accessKeyId'], s.s3.accessKeyId, 'storage.backend postgres-s3 needs an S3 access key id'],
      [['s3', 'secretAccessKeyFile'], s.s3.secretAccessKeyFile, 'storage.backend postgres-s3 needs a file with the S3 secret access key'],
    ];
    for (const [path, value, message] of need) if (value === '') ctx.addIssue({ code: 'custom', path, message });
    if (s.postgres.url !== '' && !/^postgres(ql)?:\/\//.test(s.postgres.url)) ctx.addIssue({ code: 'custom', path: ['postgres', 'url'], message: 'must start with postgres://' });
    if (s.s3.endpoint !== '' && !/^https?:\/\/[^\s/]+/.test(s.s3.endpoint)) ctx.addIssue({ code: 'custom', path: ['s3', 'endpoint'], message: 'must be an http:// or https:// URL' });
  });

export const configSchema = z.strictObject({
  dataDir: z.string().min(1).default('./data'),
  log: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  }).default({ level: 'info', format: 'auto' }),
  smtp: smtpSchema.default(() => smtpSchema.parse({})),
  pop3: pop3Schema.default(() => pop3Schema.parse({})),
  admin: adminSchema.default(() => adminSchema.parse({})),
  relay: relaySchema.default(() => relaySchema.parse({})),
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
  compliance: complianceSchema.default(() => complianceSchema.parse({})),
  /** The user directory's external source (LDAP / Active Directory); null: users are kept here only. */
  directory: z.strictObject({
    ldap: ldapSchema.nullable().default(null),
  }).default({ ldap: null }),
  /** How passwords are checked: the stored hash (local), an LDAP bind for directory users (directory), or each by its source (both). */
  auth: z.strictObject({
    mode: z.enum(['local', 'directory', 'both']).default('local'),
  }).default({ mode: 'local' }),
  /** Sign-in throttling for every password sign-in (IMAP, admin API Basic, bad admin tokens), per account and per address. */
  signIn: signInSchema.default(() => signInSchema.parse({})),
  /** The audit log (always on for configuration and compliance changes) and scheduled integrity verification. */
  audit: z.strictObject({
    /** Also record reads of message bodies (IMAP FETCH of a body, `postern archive get`). */
    recordMessageAccess: z.boolean().default(false),
    /** Run integrity verification (`postern verify`) as the job "integrity-verify" on this schedule (cron or "1d"). */
    verifySchedule: z.string().min(1).nullable().default(null),
  }).default({ recordMessageAccess: false, verifySchedule: null }),
  /** Exports (`postern export`, POST /api/v1/exports): files in <dataDir>/exports/, how long they are kept, how many at once. */
  exports: z.strictObject({
    /** Hours an export's files stay on the server after it ended (the CLI deletes them after a verified download). */
    keepHours: z.number().min(0.01).max(24 * 365).default(24),
    /** Exports running at once; more are refused with HTTP 429 until one ends. */
    maxConcurrent: z.number().int().min(1).max(16).default(2),
    /** Exports kept on the server at once (running or finished and not yet expired or deleted). */
    maxKept: z.number().int().min(1).max(500).default(100),
  }).default({ keepHours: 24, maxConcurrent: 2, maxKept: 100 }),
  /** Scheduled and on-demand jobs (imports, purge, verify); options are checked by the job kind. */
  jobs: z.array(z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    kind: z.string().min(1),
    schedule: z.string().min(1).nullable().default(null),
    enabled: z.boolean().default(true),
    options: z.record(z.string(), z.unknown()).default({}),
  })).default([]),
  /** The SMTP server through which job results reports (reportTo) are mailed. */
  jobReports: z.strictObject({
    host: z.string().default(''),
    port: port.default(25),
    tls: z.enum(['none', 'starttls', 'implicit']).default('starttls'),
    acceptSelfSigned: z.boolean().default(false),
    from: z.string().default('postern@localhost'),
    timeoutSeconds: z.number().min(1).max(600).default(30),
  }).default({ host: '', port: 25, tls: 'starttls', acceptSelfSigned: false, from: 'postern@localhost', timeoutSeconds: 30 }),
  plugins: z.array(z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    /** A plugin kept outside plugins/ (a site's own, or a third party's): absolute path of the directory holding its index.ts. */
    path: z.string().regex(/^\//, 'must be an absolute path').optional(),
    config: z.record(z.string(), z.unknown()).default({}),
  })).default([]),
});

export type Config = z.infer<typeof configSchema>;
export type PluginEntry = Config['plugins'][number];

/** The configuration with every default applied and nothing set. */
export function defaultConfig(): Config {
  return configSchema.parse({});
}
