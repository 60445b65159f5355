// Recovers the envelope (recipients, sender) of a multidrop copy from the headers the delivering MTAs left, in a configured priority order.
// Trusts only the sources the operator enables: Delivered-To after skipping N hops, the topmost single-hop headers, Received "for" of listed hosts.
// Hands on deduplicated addr-specs with lower-cased domains, the winning source, and whether the result is a To/Cc guess; never throws.

import { headerValues, extractAddresses, stripComments, type HeaderBlock } from '../mime/headers.ts';

export type HeaderSource =
  | 'x-gm-original-to'
  | 'x-original-to'
  | 'delivered-to'
  | 'envelope-to'
  | 'x-envelope-to'
  | 'x-rcpt-to'
  | 'received-for'
  | 'to-cc-from-guess';

export interface HeaderEnvelopeOptions {
  /** In priority order. */
  sources: HeaderSource[];
  /** Ignore the first N Delivered-To headers (topmost = added last); the next one is used. */
  deliveredToSkip: number;
  /** 'by' host names (case-insensitive, exact, or '.suffix' for any host under that domain) whose "for <addr>" is trusted. */
  trustedReceivedHosts: string[];
}

export interface HeaderEnvelope {
  recipients: string[];
  sender: string | null;
  source: HeaderSource | null;
  guessed: boolean;
}

/** Every source except 'received-for' (needs trusted hosts) and 'to-cc-from-guess' (not an envelope). */
export const DEFAULT_HEADER_SOURCES: HeaderSource[] = [
  'x-gm-original-to',
  'x-original-to',
  'delivered-to',
  'envelope-to',
  'x-envelope-to',
  'x-rcpt-to',
];

const ALL_SOURCES = new Set<string>([...DEFAULT_HEADER_SOURCES, 'received-for', 'to-cc-from-guess']);

/** Header read by each single-hop source: the topmost occurrence that holds an address wins. */
const SINGLE_HOP_HEADER: Partial<Record<HeaderSource, string>> = {
  'x-gm-original-to': 'x-gm-original-to',
  'x-original-to': 'x-original-to',
  'envelope-to': 'envelope-to',
  'x-envelope-to': 'x-envelope-to',
  'x-rcpt-to': 'x-rcpt-to',
};

const MAX_RECIPIENTS = 10_000;
const MAX_VALUE_CHARS = 16 * 1024;
const MAX_SKIP = 1000;
/** Keywords that start a clause of a Received field (RFC 5321 4.4). */
const RECEIVED_CLAUSES = new Set(['from', 'by', 'via', 'with', 'id', 'for']);

function addresses(value: string): string[] {
  return extractAddresses(value.slice(0, MAX_VALUE_CHARS));
}

function dedupe(list: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const a of list) {
    if (seen.has(a)) continue;
    seen.add(a);
    out.push(a);
    if (out.length >= MAX_RECIPIENTS) break;
  }
  return out;
}

/** Return-Path of the final delivery (topmost); the null reverse-path <> gives null. */
function returnPath(headers: HeaderBlock): string | null {
  const value = headerValues(headers, 'return-path')[0];
  if (value === undefined) return null;
  return addresses(value)[0] ?? null;
}

function singleHop(headers: HeaderBlock, name: string): string[] {
  for (const value of headerValues(headers, name)) {
    const found = addresses(value);
    if (found.length > 0) return found;
  }
  return [];
}

function deliveredTo(headers: HeaderBlock, skip: number): string[] {
  const value = headerValues(headers, 'delivered-to')[skip];
  return value === undefined ? [] : addresses(value);
}

interface ReceivedInfo {
  by: string | null;
  recipients: string[];
}

/** Reads the "by" host and the "for" addresses of one Received field (the date after the last ';' is dropped). */
export function parseReceived(value: string): ReceivedInfo {
  try {
    let s = stripComments(String(value).slice(0, MAX_VALUE_CHARS));
    const semi = s.lastIndexOf(';');
    if (semi !== -1) s = s.slice(0, semi);
    const tokens = s.split(/[\s]+/).filter((t) => t !== '');
    let by: string | null = null;
    const forParts: string[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const word = (tokens[i] ?? '').toLowerCase();
      if (word === 'by' && by === null) {
        const host = (tokens[i + 1] ?? '').toLowerCase().replace(/[;,]+$/, '').replace(/\.$/, '');
        if (host !== '' && !RECEIVED_CLAUSES.has(host)) by = host;
        i++;
      } else if (word === 'for') {
        let j = i + 1;
        while (j < tokens.length && !RECEIVED_CLAUSES.has((tokens[j] ?? '').toLowerCase())) {
          forParts.push(tokens[j] ?? '');
          j++;
        }
        i = j - 1;
      }
    }
    return { by, recipients: forParts.length === 0 ? [] : addresses(forParts.join(' ')) };
  } catch {
    return { by: null, recipients: [] };
  }
}

function normalizeHost(h: string): string {
  return h.trim().toLowerCase().replace(/\.$/, '');
}

function hostTrusted(host: string, trusted: string[]): boolean {
  for (const entry of trusted) {
    const t = normalizeHost(String(entry));
    if (t === '' || t === '.') continue;
    if (t.startsWith('.')) {
      if (host.length > t.length && host.endsWith(t)) return true;
    } else if (host === t) {
      return true;
    }
  }
  return false;
}

function receivedFor(headers: HeaderBlock, trusted: string[]): string[] {
  if (trusted.length === 0) return [];
  const out: string[] = [];
  for (const value of headerValues(headers, 'received')) {
    const info = parseReceived(value);
    if (info.by === null || !hostTrusted(info.by, trusted)) continue;
    out.push(...info.recipients);
    if (out.length >= MAX_RECIPIENTS) break;
  }
  return out;
}

function guess(headers: HeaderBlock): string[] {
  const out: string[] = [];
  for (const name of ['to', 'cc']) {
    for (const value of headerValues(headers, name)) out.push(...addresses(value));
  }
  return out;
}

function sanitizeOptions(options: HeaderEnvelopeOptions | undefined): HeaderEnvelopeOptions {
  const rawSources: unknown = options?.sources;
  const sources: HeaderSource[] = [];
  if (Array.isArray(rawSources)) {
    for (const s of rawSources) {
      if (typeof s === 'string' && ALL_SOURCES.has(s) && !sources.includes(s as HeaderSource)) sources.push(s as HeaderSource);
    }
  }
  const rawSkip: unknown = options?.deliveredToSkip;
  const skip = typeof rawSkip === 'number' && Number.isFinite(rawSkip) ? Math.min(MAX_SKIP, Math.max(0, Math.floor(rawSkip))) : 0;
  const rawHosts: unknown = options?.trustedReceivedHosts;
  const hosts = Array.isArray(rawHosts) ? rawHosts.filter((h): h is string => typeof h === 'string').slice(0, 1000) : [];
  return { sources, deliveredToSkip: skip, trustedReceivedHosts: hosts };
}

/** The first enabled source (in the given order) that yields at least one recipient wins. Sender comes from Return-Path (or From only for the guess source). */
export function headerEnvelope(headers: HeaderBlock, options: HeaderEnvelopeOptions): HeaderEnvelope {
  try {
    const opts = sanitizeOptions(options);
    const sender = returnPath(headers);
    for (const source of opts.sources) {
      let found: string[];
      const single = SINGLE_HOP_HEADER[source];
      if (single !== undefined) found = singleHop(headers, single);
      else if (source === 'delivered-to') found = deliveredTo(headers, opts.deliveredToSkip);
      else if (source === 'received-for') found = receivedFor(headers, opts.trustedReceivedHosts);
      else found = guess(headers);
      const recipients = dedupe(found);
      if (recipients.length === 0) continue;
      if (source === 'to-cc-from-guess') {
        const from = headerValues(headers, 'from')[0];
        const guessedSender = sender ?? (from === undefined ? null : (addresses(from)[0] ?? null));
        return { recipients, sender: guessedSender, source, guessed: true };
      }
      return { recipients, sender, source, guessed: false };
    }
    return { recipients: [], sender, source: null, guessed: false };
  } catch {
    return { recipients: [], sender: null, source: null, guessed: false };
  }
}
