// The IMAP read mix of the benches (issue 14): what a population of mail clients sends on long sessions
// (LIST, STATUS, SELECT, UID FETCH flags, FETCH of headers / ENVELOPE+BODYSTRUCTURE / whole bodies, a
// header SEARCH, NOOP), drawn from a seeded RNG so every server gets the same commands, with a tally of
// commands and latency per command type. Used by bench:imap and bench:scaleout.
import { RawImap, quote } from './imap-client.ts';
import { prng as rng } from '../helpers/prng.ts';

export const HEADER_RANGE = 50;
export const SUBJECT_WORDS = ['money', 'linux', 'free', 'update', 'perl', 'razor', 'business', 'spam'];
export const FROM_WORDS = ['yahoo', 'example', 'linux', 'net', 'spamassassin', 'john', 'com', 'org'];
export const HEADER_FIELDS = 'BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID CONTENT-TYPE)]';

export type Op = { kind: string; text: string };

export function picker(r: () => number, count: number): { at: () => number; range: (n: number) => string; pick: (l: string[]) => string } {
  return {
    at: () => 1 + Math.floor(r() * count),
    range: (n) => {
      const start = 1 + Math.floor(r() * Math.max(1, count - n + 1));
      return `${start}:${Math.min(count, start + n - 1)}`;
    },
    pick: (l) => l[Math.floor(r() * l.length)]!,
  };
}

/** One sync cycle of a mail client on a long session (the persistent and tls scenarios). */
export function syncCycle(r: () => number, count: number): Op[] {
  const { at, range, pick } = picker(r, count);
  const searches = [
    () => `SEARCH SUBJECT ${quote(pick(SUBJECT_WORDS))}`,
    () => `SEARCH FROM ${quote(pick(FROM_WORDS))}`,
    () => 'SEARCH UNSEEN',
  ];
  return [
    { kind: 'LIST', text: 'LIST "" "*"' },
    { kind: 'STATUS', text: 'STATUS INBOX (MESSAGES UIDNEXT UNSEEN)' },
    { kind: 'SELECT', text: 'SELECT INBOX' },
    { kind: 'FETCH flags', text: 'UID FETCH 1:* (UID FLAGS)' },
    { kind: 'FETCH headers', text: `FETCH ${range(HEADER_RANGE)} (UID RFC822.SIZE FLAGS INTERNALDATE ${HEADER_FIELDS})` },
    { kind: 'FETCH envelope', text: `FETCH ${range(10)} (ENVELOPE BODYSTRUCTURE)` },
    { kind: 'FETCH body', text: `FETCH ${at()} (BODY.PEEK[])` },
    { kind: 'FETCH body', text: `FETCH ${at()} (BODY.PEEK[TEXT])` },
    { kind: 'SEARCH header', text: searches[Math.floor(r() * searches.length)]!() },
    { kind: 'NOOP', text: 'NOOP' },
  ];
}

export interface RunResult {
  seconds: number;
  total: number;
  bytes: number;
  perKind: Map<string, { n: number; ms: number }>;
  errors: string[];
}

export class Tally {
  readonly perKind = new Map<string, { n: number; ms: number }>();
  readonly errors: string[] = [];
  total = 0;
  bytes = 0;
  async run(c: RawImap, op: Op): Promise<void> {
    const t0 = performance.now();
    const res = await c.command(op.text);
    const ms = performance.now() - t0;
    if (res.status !== 'OK') {
      if (this.errors.length < 10) this.errors.push(`${op.text}: ${res.status} ${res.text}`);
      return;
    }
    this.count(op.kind, ms, res.bytes);
  }
  count(kind: string, ms: number, bytes: number): void {
    this.total++;
    this.bytes += bytes;
    const k = this.perKind.get(kind) ?? { n: 0, ms: 0 };
    k.n++;
    k.ms += ms;
    this.perKind.set(kind, k);
  }
}

export const rate = (r: RunResult): number => r.total / r.seconds;
export function spread(xs: number[], digits = 1): string {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return `${s[0]!.toFixed(digits)} / ${med.toFixed(digits)} / ${s.at(-1)!.toFixed(digits)}`;
}

export function merged(runs: RunResult[]): Map<string, { n: number; ms: number }> {
  const out = new Map<string, { n: number; ms: number }>();
  for (const r of runs) for (const [k, v] of r.perKind) {
    const o = out.get(k) ?? { n: 0, ms: 0 };
    o.n += v.n;
    o.ms += v.ms;
    out.set(k, o);
  }
  return out;
}

/** `clients` sessions (LOGIN as user, spread over ports) each repeating syncCycle over a mailbox of `count` messages for `seconds`. */
export async function persistentMix(ports: number[], o: { user: string; password: string; clients: number; seconds: number; count: number; round: number }): Promise<RunResult> {
  const tally = new Tally();
  const clients = await Promise.all(Array.from({ length: o.clients }, async (_, i) => {
    const c = await RawImap.connect(ports[i % ports.length]!, '127.0.0.1', 30_000);
    await c.ok(`LOGIN ${o.user} ${quote(o.password)}`);
    return c;
  }));
  const begun = performance.now();
  const end = begun + o.seconds * 1000;
  await Promise.all(clients.map(async (c, i) => {
    const r = rng(1000 * o.round + i);
    while (performance.now() < end) {
      for (const op of syncCycle(r, o.count)) {
        if (performance.now() >= end) break;
        await tally.run(c, op);
      }
    }
  }));
  const seconds = (performance.now() - begun) / 1000;
  for (const c of clients) {
    await c.command('LOGOUT').catch(() => undefined);
    c.close();
  }
  return { seconds, total: tally.total, bytes: tally.bytes, perKind: tally.perKind, errors: tally.errors };
}
