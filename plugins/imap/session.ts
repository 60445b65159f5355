// One IMAP connection: the state machine (not authenticated → authenticated → selected → logout), the
// command loop over the streaming reader, dispatch with per-state checks (wrong state = tagged NO,
// malformed = tagged BAD), timeouts (short before login, long after), STARTTLS, IDLE and the EXISTS
// announcements of newly archived messages. Command bodies live in commands-*.ts, fetch.ts, search.ts.
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import { errorMessage } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { HookRegistry } from '../../core/app/hooks.ts';
import type { SearchService } from '../../core/app/search-service.ts';
import type { ArchiveStore, UserRecord } from '../../core/storage/types.ts';
import type { ImapConfig } from './config.ts';
import type { FolderIndex, FolderIndexes } from './folder-index.ts';
import type { SignInThrottle } from '../../core/auth/sign-in-throttle.ts';
import type { MailboxContext, MailboxRef } from './mailboxes.ts';
import type { MessageStore } from './message-store.ts';
import { CommandReader } from './reader.ts';
import { FramingError, Output } from './output.ts';
import { ImapBad, ImapNo, parseCommand, type ParsedCommand } from './parser.ts';
import { COMMANDS, type CommandState } from './commands.ts';
import type { Credentials } from '../../core/auth/credentials.ts';

export interface ImapDeps {
  config: ImapConfig;
  archive: ArchiveStore;
  hooks: HookRegistry;
  log: Logger;
  metrics: Metrics;
  indexes: FolderIndexes;
  messages: MessageStore;
  /** The shared sign-in throttle (LOGIN and AUTHENTICATE). */
  signIn: SignInThrottle;
  /** The shared password check (stored hash or directory bind); stored hashes only when absent. */
  credentials?: Credentials;
  receivedFolder: string;
  sentFolder: string;
  /** The full-text index when the search plugin is enabled (SEARCH uses it to skip messages it rules out). */
  search?: () => SearchService | null;
  /** The current TLS context (replaced on SIGHUP), for STARTTLS. */
  secureContext(): SecureContext;
}

export interface Selected {
  ref: MailboxRef;
  index: FolderIndex;
  /** Messages visible to this session (a prefix of the folder's UIDs). */
  count: number;
  uidValidity: number;
  uidNext: number;
  examine: boolean;
  /** UIDs marked \Seen in this session (never stored: the archive is read-only). */
  seen: Set<number>;
  unwatch: () => void;
}

const MAX_SEEN = 100_000;

export class Session {
  state: CommandState = 'notAuthenticated';
  user: UserRecord | null = null;
  auditor = false;
  selected: Selected | null = null;
  secure: boolean;
  readonly out: Output;
  readonly reader: CommandReader;
  readonly log: Logger;
  private socket: Duplex;
  private closed = false;
  /** When the command being executed was complete (for postern_imap_command_duration_seconds). */
  private commandStarted = 0;
  private idleWake: (() => void) | null = null;

  constructor(socket: Duplex, readonly deps: ImapDeps, secure: boolean, readonly listener: string, readonly remoteAddress: string, readonly id: string) {
    this.socket = socket;
    this.secure = secure;
    this.log = deps.log.child({ conn: id, listener, remote: remoteAddress });
    this.out = new Output(socket);
    this.reader = new CommandReader(deps.config, {
      continuation: () => void this.out.line('+ Ready for literal data'),
      refuseLiteral: (line) => (/^\S+ +APPEND /i.test(line.toString('latin1')) ? { status: 'NO', text: '[CANNOT] The archive is read-only; APPEND is not possible' } : null),
    });
    this.watchSocket(socket);
    this.reader.attach(socket);
  }

  private watchSocket(socket: Duplex): void {
    socket.on('error', (err: Error) => this.log.debug('Connection error', { err: err.message }));
    socket.on('close', () => this.end());
    socket.on('timeout', () => {
      this.out.line('* BYE Autologout; idle for too long');
      this.close();
    });
    this.applyTimeout();
  }

  private applyTimeout(): void {
    const s = this.state === 'notAuthenticated' ? this.deps.config.loginTimeoutSeconds : this.deps.config.idleTimeoutSeconds;
    (this.socket as Duplex & { setTimeout(ms: number): void }).setTimeout(Math.round(s * 1000));
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UNSELECT', 'SPECIAL-USE', 'CHILDREN'];
    if (this.state === 'notAuthenticated') {
      if (!this.secure && this.listener === 'imap') caps.push('STARTTLS');
      if (this.secure || this.deps.config.allowPlaintext) caps.push('AUTH=PLAIN');
      else caps.push('LOGINDISABLED');
    }
    return caps;
  }

  mailboxContext(): MailboxContext {
    return {
      archive: this.deps.archive, indexes: this.deps.indexes, user: this.user?.name ?? '', auditor: this.auditor,
      receivedFolder: this.deps.receivedFolder, sentFolder: this.deps.sentFolder, splitByYearAbove: this.deps.config.splitByYearAbove,
    };
  }

  loggedIn(user: UserRecord): void {
    this.user = user;
    this.auditor = user.privileges.includes('auditor');
    this.state = 'authenticated';
    this.applyTimeout();
  }

  /** Replace the transport with TLS (STARTTLS); bytes the client sent before the handshake are dropped. */
  startTls(): void {
    const raw = this.socket as Duplex & { setTimeout(ms: number): void };
    raw.setTimeout(0);
    raw.removeAllListeners('timeout');
    const tls = new TLSSocket(this.socket as never, { isServer: true, secureContext: this.deps.secureContext() });
    this.reader.attach(tls);
    this.out.switchTo(tls);
    this.socket = tls;
    this.secure = true;
    this.watchSocket(tls);
  }

  markSeen(uid: number): boolean {
    const sel = this.selected;
    if (!sel || sel.examine || sel.seen.has(uid) || sel.seen.size >= MAX_SEEN) return false;
    sel.seen.add(uid);
    return true;
  }

  deselect(): void {
    this.selected?.unwatch();
    this.selected = null;
    if (this.state === 'selected') this.state = 'authenticated';
  }

  /** Tell the client about messages archived since its snapshot (* n EXISTS). */
  async announce(woken = false): Promise<void> {
    const sel = this.selected;
    if (!sel) return;
    // Woken by the folder watcher: new entries were committed, rescan. Otherwise (NOOP, CHECK, the
    // start of IDLE) new entries of this process have marked the index dirty (the stored hook) and
    // fresh() rescans then, or when the last scan is older than the staleness bound.
    await (woken ? sel.index.refresh() : sel.index.fresh());
    if (this.selected !== sel) return;
    const now = sel.index.view(sel.ref.year).length;
    if (now > sel.count) {
      sel.count = now;
      this.out.line(`* ${now} EXISTS`);
    }
  }

  /** Called by the folder watcher when the selected folder grew. */
  wake(): void {
    this.idleWake?.();
  }

  async run(): Promise<void> {
    this.out.line(`* OK [CAPABILITY ${this.capabilities().join(' ')}] Postern read-only archive ready`);
    while (!this.closed) {
      const r = await this.reader.next('command');
      if (r.kind === 'end') break;
      if (r.kind === 'error') {
        this.deps.metrics.imapCommands.inc({ command: 'UNPARSED', status: r.status });
        if (r.fatal) {
          this.out.line(`* BYE ${r.text}`);
          this.close();
          break;
        }
        this.out.line(`${r.tag ?? '*'} ${r.status} ${r.text}`);
        continue;
      }
      if (r.kind !== 'command') continue;
      const parsed = parseCommand(r.data);
      if (!parsed.command) {
        this.deps.metrics.imapCommands.inc({ command: 'UNPARSED', status: 'BAD' });
        this.out.line(`${parsed.tag ?? '*'} BAD ${parsed.error ?? 'Malformed command'}`);
        continue;
      }
      this.commandStarted = performance.now();
      await this.execute(parsed.command);
      await this.out.drain();
    }
    this.close();
  }

  private async execute(cmd: ParsedCommand): Promise<void> {
    let name = cmd.name;
    let args = cmd.args;
    let uid = false;
    if (name === 'UID') {
      const sub = args[0];
      if (!sub || sub.t !== 'atom') return this.finish(cmd, 'UID', 'BAD', 'UID needs a command');
      name = sub.v.toUpperCase();
      args = args.slice(1);
      uid = true;
      if (!['FETCH', 'SEARCH', 'STORE', 'COPY', 'MOVE', 'EXPUNGE'].includes(name)) return this.finish(cmd, 'UID', 'BAD', `Unknown UID command "${sub.v.slice(0, 40)}"`);
    }
    const label = uid ? `UID ${name}` : name;
    const def = COMMANDS[name];
    if (!def) return this.finish(cmd, 'UNKNOWN', 'BAD', `Unknown command "${cmd.name.slice(0, 40)}"`);
    if (!def.states.includes(this.state)) {
      const why = this.state === 'notAuthenticated' ? 'Log in first' : this.state === 'authenticated' && def.states.includes('selected') ? 'Select a mailbox first' : 'Not allowed in this state';
      return this.finish(cmd, label, 'NO', `${why}`);
    }
    try {
      const text = await def.run(this, { ...cmd, name, args }, uid);
      if (text === null) return; // the command ended the session
      this.finish(cmd, label, 'OK', text);
    } catch (err) {
      if (err instanceof ImapBad) return this.finish(cmd, label, 'BAD', err.message);
      if (err instanceof ImapNo) return this.finish(cmd, label, 'NO', `${err.code ? `[${err.code}] ` : ''}${err.message}`);
      this.log.error('IMAP command failed', { command: label, err: errorMessage(err) });
      if (err instanceof FramingError) {
        this.deps.metrics.imapCommands.inc({ command: label, status: 'BYE' });
        this.close();
        return;
      }
      this.finish(cmd, label, 'NO', '[SERVERBUG] Internal error; the server log has the details');
    }
  }

  private finish(cmd: ParsedCommand, label: string, status: 'OK' | 'NO' | 'BAD', text: string): void {
    this.deps.metrics.imapCommands.inc({ command: label, status });
    if (label !== 'IDLE') this.deps.metrics.imapCommandDuration.observe({ command: label }, (performance.now() - this.commandStarted) / 1000);
    this.out.line(`${cmd.tag} ${status} ${text}`);
  }

  /** IDLE: announce new messages until the client sends DONE. */
  async idle(): Promise<string | null> {
    this.out.line('+ idling');
    this.deps.metrics.imapIdleSessions.inc();
    let pending = Promise.resolve();
    this.idleWake = () => {
      pending = pending.then(() => this.announce(true)).catch((err: unknown) => this.log.warn('Announcing new messages failed', { err: errorMessage(err) }));
    };
    try {
      this.idleWake();
      const r = await this.reader.next('line');
      await pending;
      if (r.kind !== 'line') return r.kind === 'end' ? null : (this.close(), null);
      if (r.data.toString('latin1').trim().toUpperCase() !== 'DONE') throw new ImapBad('Expected DONE to end IDLE');
      return 'IDLE terminated';
    } finally {
      this.idleWake = null;
      this.deps.metrics.imapIdleSessions.dec();
    }
  }

  close(): void {
    if (this.closed) return;
    this.out.flush();
    this.closed = true;
    this.deselect();
    this.reader.detach();
    this.socket.end();
    const s = this.socket;
    setTimeout(() => s.destroy(), 2000).unref();
  }

  private end(): void {
    this.closed = true;
    this.deselect();
    this.reader.detach();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
