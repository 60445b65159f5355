// The hook catalogue: every hook's kind, arguments and result type. HOOKS.md (in this folder) is the
// table operators and plugin authors read; keep the two in step.
import type { Readable } from 'node:stream';
import type { Verdict } from './verdict.ts';
import type { HeaderBlock, MessageSummary } from '../mime/headers.ts';
import type { ArchiveEntry, FileInto, UserRecord } from '../storage/types.ts';
import type { JournalEnvelope, JournalKind, JournalOriginal, JournalReport } from '../journal/journal-report.ts';
import type { Assignment } from '../intake/intake.ts';

/** What receivers know about a session; read-only for plugins. */
export interface SessionInfo {
  id: string;
  listener: string;
  remoteAddress: string;
  remotePort: number;
  helo: string;
  secure: boolean;
  user: string | null;
}

export interface Envelope {
  mailFrom: string;
  rcptTo: string[];
}

export interface Route extends FileInto {
  /** Why: "envelope rcpt", "envelope sender", "journal Bcc", … (kept for provenance and debugging). */
  reason: string;
}

/** A journal report this message was unwrapped from (provenance; its envelope decides attribution). */
export interface JournalInfo {
  kind: JournalKind;
  envelope: JournalEnvelope;
  /** Which attachment of the report this message is. */
  role: JournalOriginal['role'];
  ndrWrapped: boolean;
  wrapper: JournalReport['wrapper'];
  problems: string[];
}

/** Everything the archiving half knows about one message to archive (one intake entry, or one original unwrapped from it). */
export interface MessageContext {
  intakeId: string;
  envelope: Envelope;
  session: { listener: string; remoteAddress: string; helo: string; user: string | null };
  receivedAt: string;
  size: number;
  sha256: string;
  /** Headers and summary of the message being archived (the original, for a journal report). */
  headers: HeaderBlock;
  summary: MessageSummary;
  journal: JournalInfo | null;
  /** The owner the capturing listener already knew (POP3 login, relay AUTH user, single-user import). */
  assign: Assignment | null;
  /**
   * Results of the analyzers plugins registered (PluginApi.analyzer), by plugin name, computed in an
   * analysis worker under the archiving budget. Missing for a plugin whose analyzer failed and for a
   * message archived raw-only after exceeding its budget.
   */
  analysis: Readonly<Record<string, unknown>>;
  /** The bytes of the message being archived, streamed (for plugins that need the body). */
  open(): Readable;
}

/**
 * A dedup plugin's answer: the message this is a copy of (if it knows), and/or identity keys (e.g. a
 * canonical hash) under which the archive merges copies atomically and remembers this message.
 */
export interface DedupAnswer {
  mergeInto?: string;
  identities?: string[];
}

export interface StoredInfo {
  messageId: string;
  entries: Array<Pick<ArchiveEntry, 'user' | 'folder' | 'uid'>>;
  context: MessageContext;
}

/**
 * Entries about to be deleted (manual deletion or a purge batch). A `reject` or `tempfail` verdict vetoes
 * the deletion (a plugin's own legal-hold rules); the store still enforces holds and retention itself.
 */
export interface BeforeDeleteInfo {
  entries: Array<{ user: string; folder: string; uid: number }>;
  actor: string;
  reason: 'manual' | 'purge';
}

/** A read of archived mail (IMAP SELECT/EXAMINE or a body FETCH; a web folder listing, message view or download), for the audit log. */
export interface AccessInfo {
  /** Who read: the logged-in user. */
  user: string;
  /** True when the read went through the auditor namespace (someone else's archive). */
  auditor: boolean;
  /** Whose archive was read. */
  target: string;
  folder: string;
  /** The message read, or null for opening a folder. */
  uid: number | null;
  /** IMAP: "select", "examine" or "fetch-body"; web: "list" (a folder page), "view" (a message), "download-original", "download-attachment". */
  what: 'select' | 'examine' | 'fetch-body' | 'list' | 'view' | 'download-original' | 'download-attachment';
  /** The protocol the read came through ("imap", "web"). */
  via: string;
}

/** A login attempt on a read protocol (IMAP, API): what the audit log records as a login. */
export interface AuthenticateInfo {
  /** The protocol: "imap", "api" … */
  via: string;
  /** The name the client gave (user name or address); never the password. */
  login: string;
  /** The user it resolved to, when known. */
  user: string | null;
  ok: boolean;
  /** Why it failed ("bad-password", "no-imap-access", "plaintext-refused" …). */
  reason?: string;
  remote?: string;
}

/** A user added or changed through the admin API (before is null for a new user). */
export interface UserChangedInfo {
  before: UserRecord | null;
  after: UserRecord;
  /** Who made the change: "admin-token" or a user name. */
  actor: string;
}

type Gate<A> = { kind: 'gate'; args: A; result: Verdict };
type Collect<A, R> = { kind: 'collect'; args: A; result: R };
type Notify<A> = { kind: 'notify'; args: A; result: void };

export interface HookCatalogue {
  connect: Gate<{ session: SessionInfo }>;
  helo: Gate<{ session: SessionInfo; hostname: string }>;
  mailFrom: Gate<{ session: SessionInfo; address: string; params: Record<string, string> }>;
  rcptTo: Gate<{ session: SessionInfo; address: string; params: Record<string, string>; envelope: Envelope }>;
  data: Gate<{ session: SessionInfo; envelope: Envelope }>;
  dataEnd: Gate<{ session: SessionInfo; envelope: Envelope; size: number; headers: HeaderBlock }>;
  queued: Notify<{ session: SessionInfo; envelope: Envelope; intakeId: string; size: number }>;
  parse: Collect<{ context: MessageContext }, Record<string, unknown>>;
  route: Collect<{ context: MessageContext }, Route[]>;
  dedup: Collect<{ context: MessageContext }, DedupAnswer | null>;
  /** Parts are merged (earlier plugins win a key) into the new message's attributes (JSON, ≤ 256 KB). */
  index: Collect<{ context: MessageContext; messageId: string }, Record<string, unknown>>;
  retention: Collect<{ context: MessageContext; routes: Route[] }, Record<string, unknown>>;
  stored: Notify<StoredInfo>;
  disconnect: Notify<{ session: SessionInfo }>;
  access: Notify<AccessInfo>;
  authenticate: Notify<AuthenticateInfo>;
  userChanged: Notify<UserChangedInfo>;
  beforeDelete: Gate<BeforeDeleteInfo>;
}

export type HookName = keyof HookCatalogue;
export type HookArgs<K extends HookName> = HookCatalogue[K]['args'];
export type HookResult<K extends HookName> = HookCatalogue[K]['result'];
export type GateHook = { [K in HookName]: HookCatalogue[K]['kind'] extends 'gate' ? K : never }[HookName];
export type CollectHook = { [K in HookName]: HookCatalogue[K]['kind'] extends 'collect' ? K : never }[HookName];
export type NotifyHook = { [K in HookName]: HookCatalogue[K]['kind'] extends 'notify' ? K : never }[HookName];

