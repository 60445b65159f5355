// POP3 command syntax (RFC 1939, 2449, 2595, 5034) as the proxy accepts it from clients: one line of
// printable ASCII, a known keyword, and arguments of the right shape. What passes is re-serialised
// in canonical form before it goes upstream, so nothing but a well-formed command reaches the server.
// Hands the session a Command, or a "-ERR" text for the client.

export type Verb =
  | 'CAPA' | 'STLS' | 'QUIT' | 'USER' | 'PASS' | 'APOP' | 'AUTH'
  | 'STAT' | 'LIST' | 'UIDL' | 'TOP' | 'RETR' | 'DELE' | 'RSET' | 'NOOP';

export interface Command {
  verb: Verb;
  /** The argument text after the keyword ("" when none). */
  args: string;
  /** Message numbers (RETR/DELE/LIST/UIDL), or message and line count (TOP). */
  numbers: number[];
  /** The line to send upstream (keyword upper-cased). */
  line: string;
}

const NO_ARGS = new Set<Verb>(['CAPA', 'STLS', 'QUIT', 'STAT', 'RSET', 'NOOP']);
const VERBS = new Set<string>([...NO_ARGS, 'USER', 'PASS', 'APOP', 'AUTH', 'LIST', 'UIDL', 'TOP', 'RETR', 'DELE']);
const MSG = /^[1-9]\d{0,8}$/;
const COUNT = /^\d{1,9}$/;

export function parseCommand(raw: Buffer): Command | { error: string } {
  const text = raw.toString('latin1');
  // Printable ASCII; bytes from 0x80 (UTF-8 names and passwords) only where the syntax below admits them.
  if (!/^[\x20-\x7e\x80-\xff]*$/.test(text)) return { error: '-ERR Invalid characters in command' };
  const m = /^([A-Za-z]{1,8})(?: (.*))?$/.exec(text);
  if (m && /[\x80-\xff]/.test(m[2] ?? '') && !/^(USER|PASS|APOP)$/i.test(m[1] ?? '')) return { error: '-ERR Invalid characters in command' };
  if (!m) return { error: '-ERR Invalid command syntax' };
  const keyword = (m[1] as string).toUpperCase();
  if (!VERBS.has(keyword)) return { error: '-ERR Unknown command' };
  const verb = keyword as Verb;
  const args = m[2] ?? '';
  const ok = (numbers: number[] = []): Command => ({ verb, args, numbers, line: args === '' ? verb : `${verb} ${args}` });
  const syntax = (usage: string): { error: string } => ({ error: `-ERR Syntax: ${usage}` });
  if (NO_ARGS.has(verb)) return args === '' ? ok() : syntax(`${verb} takes no argument`);
  switch (verb) {
    case 'USER':
      return args.trim() !== '' && args.length <= 255 ? ok() : syntax('USER name');
    case 'PASS':
      return args !== '' ? ok() : syntax('PASS password');
    case 'APOP':
      return /^[^\s]{1,255} [0-9a-fA-F]{32}$/.test(args) ? ok() : syntax('APOP name digest');
    case 'AUTH':
      return /^([A-Za-z0-9_-]{1,20}( [A-Za-z0-9+/=]+| =)?)?$/.test(args) ? ok() : syntax('AUTH mechanism [initial-response]');
    case 'RETR': case 'DELE':
      return MSG.test(args) ? ok([Number(args)]) : syntax(`${verb} message-number`);
    case 'LIST': case 'UIDL':
      if (args === '') return ok();
      return MSG.test(args) ? ok([Number(args)]) : syntax(`${verb} [message-number]`);
    case 'TOP': {
      const [n = '', lines = '', ...more] = args.split(' ');
      return MSG.test(n) && COUNT.test(lines) && more.length === 0 ? ok([Number(n), Number(lines)]) : syntax('TOP message-number lines');
    }
    default:
      return { error: '-ERR Unknown command' };
  }
}

/**
 * The identity of an AUTH PLAIN response (authzid, else authcid), for archive attribution only; the
 * response itself is passed upstream verbatim and never kept. Null when it is not valid PLAIN.
 */
export function decodePlainIdentity(response: string): string | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(response)) return null;
  const parts = Buffer.from(response, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authzid = '', authcid = ''] = parts;
  const id = authzid !== '' ? authzid : authcid;
  return id !== '' && id.length <= 255 ? id : null;
}
