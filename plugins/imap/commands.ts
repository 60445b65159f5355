// The command table: which states each command is allowed in and what runs it. Session-level commands
// (CAPABILITY, NOOP, LOGOUT, ID, ENABLE, NAMESPACE, STARTTLS, LOGIN, AUTHENTICATE, IDLE) live here;
// mailbox commands in commands-mailbox.ts, FETCH/STORE in fetch.ts, SEARCH in search.ts. A run function
// returns the text of the tagged OK, or null when it has answered and ended the session itself.
import type { Session } from './session.ts';
import { ImapBad, ImapNo, astring, atom, expectArgs, type ParsedCommand } from './parser.ts';
import { accountFor, checkLogin, decodePlain, type LoginOutcome } from './auth.ts';
import { pause } from '../../core/auth/sign-in-throttle.ts';
import { MAILBOX_COMMANDS } from './commands-mailbox.ts';
import { fetchCommand, storeCommand } from './fetch.ts';
import { searchCommand } from './search.ts';

export type CommandState = 'notAuthenticated' | 'authenticated' | 'selected';

export interface CommandDef {
  states: CommandState[];
  run(s: Session, cmd: ParsedCommand, uid: boolean): Promise<string | null>;
}

const ANY: CommandState[] = ['notAuthenticated', 'authenticated', 'selected'];
const AUTHED: CommandState[] = ['authenticated', 'selected'];
const SELECTED: CommandState[] = ['selected'];

function noArgs(cmd: ParsedCommand): void {
  expectArgs(cmd.args, 0, 0, cmd.name);
}

async function login(s: Session, login: string, password: string): Promise<string> {
  const { deps } = s;
  if (!s.secure && !deps.config.allowPlaintext) {
    deps.metrics.imapLogins.inc({ outcome: 'plaintext-refused' });
    await deps.hooks.notify('authenticate', { via: 'imap', login: login.slice(0, 320), user: null, ok: false, reason: 'plaintext-refused', remote: s.remoteAddress }, s.log);
    throw new ImapNo('Log in only after STARTTLS (or use the implicit TLS port)', 'PRIVACYREQUIRED');
  }
  const key = login.toLowerCase().slice(0, 320);
  const remote = s.remoteAddress;
  // The slot is taken before the password is checked, so concurrent connections queue instead of
  // multiplying the rate; every failure (an unknown user, a wrong password, a right one without IMAP
  // access, a throttled attempt) gets the same answer.
  const account = await accountFor(deps.archive, login);
  const admission = deps.signIn.admit(account, remote);
  if (admission.throttled) {
    deps.metrics.imapLogins.inc({ outcome: 'throttled' });
    deps.metrics.signIns.inc({ via: 'imap', outcome: 'throttled' });
    if (admission.firstOfBurst) {
      s.log.warn('IMAP logins throttled', { login: key, retryAfterMs: admission.retryAfterMs });
      await deps.hooks.notify('authenticate', { via: 'imap', login: key, user: null, ok: false, reason: 'throttled', remote }, s.log);
    }
    await pause(deps.signIn.settings.maxWaitMs);
    throw new ImapNo('Authentication failed', 'AUTHENTICATIONFAILED');
  }
  const { ticket } = admission;
  await pause(ticket.waitMs);
  let outcome: LoginOutcome | null = null;
  try {
    outcome = await checkLogin(deps.archive, deps.config.accessGroups, account, password, deps.credentials);
  } finally {
    if (outcome?.ok) ticket.succeeded();
    else ticket.failed();
  }
  deps.metrics.signIns.inc({ via: 'imap', outcome: outcome.ok ? 'ok' : 'failed' });
  if (!outcome.ok) {
    deps.metrics.imapLogins.inc({ outcome: outcome.reason });
    await deps.hooks.notify('authenticate', { via: 'imap', login: key, user: null, ok: false, reason: outcome.reason, remote }, s.log);
    if (outcome.reason === 'directory-unavailable') {
      s.log.error('The directory server cannot be reached: IMAP sign-in impossible', { login: key, err: outcome.error });
      throw new ImapNo('The directory server cannot check passwords now; try again later', 'UNAVAILABLE');
    }
    s.log.warn('IMAP login failed', { login: key, reason: outcome.reason });
    throw new ImapNo('Authentication failed', 'AUTHENTICATIONFAILED');
  }
  deps.metrics.imapLogins.inc({ outcome: 'ok' });
  s.loggedIn(outcome.user);
  await deps.hooks.notify('authenticate', { via: 'imap', login: key, user: outcome.user.name, ok: true, remote: s.remoteAddress }, s.log);
  s.log.info('IMAP login', { user: outcome.user.name, auditor: s.auditor });
  return `[CAPABILITY ${s.capabilities().join(' ')}] Logged in`;
}

/** NOOP and CHECK: no arguments; report new mail (EXISTS) since the last report. */
function announcing(name: string, states: CommandState[]): CommandDef {
  return {
    states,
    async run(s, cmd) {
      noArgs(cmd);
      await s.announce();
      return `${name} completed`;
    },
  };
}

const SESSION_COMMANDS: Record<string, CommandDef> = {
  CAPABILITY: {
    states: ANY,
    async run(s, cmd) {
      noArgs(cmd);
      s.out.line(`* CAPABILITY ${s.capabilities().join(' ')}`);
      return 'CAPABILITY completed';
    },
  },
  NOOP: announcing('NOOP', ANY),
  CHECK: announcing('CHECK', SELECTED),
  LOGOUT: {
    states: ANY,
    async run(s, cmd) {
      noArgs(cmd);
      s.out.line('* BYE Logging out');
      s.out.line(`${cmd.tag} OK LOGOUT completed`);
      s.deps.metrics.imapCommands.inc({ command: 'LOGOUT', status: 'OK' });
      s.close();
      return null;
    },
  },
  ID: {
    states: ANY,
    async run(s, cmd) {
      expectArgs(cmd.args, 1, 1, 'ID (field value …) | NIL');
      const a = cmd.args[0];
      if (!a || !((a.t === 'atom' && a.v.toUpperCase() === 'NIL') || (a.t === 'list' && a.v.length % 2 === 0 && a.v.length <= 60))) {
        throw new ImapBad('ID needs a list of field/value pairs or NIL');
      }
      s.out.line('* ID ("name" "Postern" "vendor" "Postern" "support-url" "https://github.com/postern")');
      return 'ID completed';
    },
  },
  ENABLE: {
    states: AUTHED,
    async run(s, cmd) {
      if (cmd.args.length === 0) throw new ImapBad('ENABLE needs at least one capability');
      for (const a of cmd.args) atom(a, 'capability');
      s.out.line('* ENABLED');
      return 'ENABLE completed (no extension needs enabling here)';
    },
  },
  NAMESPACE: {
    states: AUTHED,
    async run(s, cmd) {
      noArgs(cmd);
      s.out.line(`* NAMESPACE (("" "/")) NIL ${s.auditor ? '(("Users/" "/"))' : 'NIL'}`);
      return 'NAMESPACE completed';
    },
  },
  STARTTLS: {
    states: ['notAuthenticated'],
    async run(s, cmd) {
      noArgs(cmd);
      if (s.secure) throw new ImapBad('TLS is already active');
      if (s.listener !== 'imap') throw new ImapBad('STARTTLS is offered on the plain port only');
      s.out.line(`${cmd.tag} OK Begin TLS negotiation now`);
      s.deps.metrics.imapCommands.inc({ command: 'STARTTLS', status: 'OK' });
      await s.out.drain();
      s.startTls();
      return null;
    },
  },
  LOGIN: {
    states: ['notAuthenticated'],
    async run(s, cmd) {
      expectArgs(cmd.args, 2, 2, 'LOGIN user password');
      return login(s, astring(cmd.args[0], 'user name'), astring(cmd.args[1], 'password'));
    },
  },
  AUTHENTICATE: {
    states: ['notAuthenticated'],
    async run(s, cmd) {
      expectArgs(cmd.args, 1, 2, 'AUTHENTICATE PLAIN [initial-response]');
      const mech = atom(cmd.args[0], 'mechanism').toUpperCase();
      if (mech !== 'PLAIN') throw new ImapNo(`Authentication mechanism "${mech.slice(0, 30)}" is not supported; use PLAIN`);
      if (!s.secure && !s.deps.config.allowPlaintext) throw new ImapNo('Authenticate only after STARTTLS (or use the implicit TLS port)', 'PRIVACYREQUIRED');
      let response: string;
      if (cmd.args[1]) {
        response = astring(cmd.args[1], 'initial response');
        if (response === '=') response = '';
      } else {
        s.out.line('+ ');
        const r = await s.reader.next('line');
        if (r.kind !== 'line') return r.kind === 'end' ? null : (s.close(), null);
        response = r.data.toString('latin1').trim();
      }
      if (response === '*') throw new ImapBad('Authentication cancelled');
      const plain = decodePlain(response);
      if (!plain) throw new ImapBad('Malformed PLAIN response');
      if (plain.authzid !== '' && plain.authzid.toLowerCase() !== plain.login.toLowerCase()) {
        throw new ImapNo('Logging in as another user is not supported', 'AUTHORIZATIONFAILED');
      }
      return login(s, plain.login, plain.password);
    },
  },
  IDLE: {
    states: AUTHED,
    async run(s, cmd) {
      noArgs(cmd);
      return s.idle();
    },
  },
  FETCH: { states: SELECTED, run: (s, cmd, uid) => fetchCommand(s, cmd, uid) },
  STORE: { states: SELECTED, run: (s, cmd, uid) => storeCommand(s, cmd, uid) },
  SEARCH: { states: SELECTED, run: (s, cmd, uid) => searchCommand(s, cmd, uid) },
};

export const COMMANDS: Record<string, CommandDef | undefined> = { ...SESSION_COMMANDS, ...MAILBOX_COMMANDS };
