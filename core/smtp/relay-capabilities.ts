// EHLO capability reconciliation for the relay proxy: what the upstream announced (parsed from its
// EHLO reply), what Postern's client leg may therefore advertise (only what both ends can do), and
// which MAIL FROM / RCPT TO parameters may be carried across. It also installs a per-server
// `ehloFilter` option on smtp-server so each session's EHLO reply reflects its own upstream.
// Trusts the upstream's EHLO lines only as far as their syntax; hands on plain values.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPServerSession } from 'smtp-server';

export interface UpstreamCapabilities {
  /** False when the upstream refused EHLO and only HELO worked. */
  esmtp: boolean;
  /** SIZE limit in bytes; 0 = SIZE announced without a limit; null = not announced. */
  size: number | null;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  dsn: boolean;
  pipelining: boolean;
  starttls: boolean;
  /** SASL mechanisms announced (upper case). */
  auth: string[];
}

export const NO_CAPABILITIES: UpstreamCapabilities = {
  esmtp: false, size: null, eightBitMime: false, smtpUtf8: false, dsn: false, pipelining: false, starttls: false, auth: [],
};

/** Capabilities from an EHLO reply's lines (the first line is the greeting and is skipped). */
export function parseEhlo(lines: readonly string[]): UpstreamCapabilities {
  const caps: UpstreamCapabilities = { ...NO_CAPABILITIES, esmtp: true, auth: [] };
  for (const raw of lines.slice(1)) {
    const [keyword = '', ...args] = raw.trim().split(/\s+/);
    switch (keyword.toUpperCase()) {
      case 'SIZE': {
        const n = args[0] === undefined ? 0 : Number(args[0]);
        caps.size = Number.isSafeInteger(n) && n >= 0 ? n : 0;
        break;
      }
      case '8BITMIME': caps.eightBitMime = true; break;
      case 'SMTPUTF8': caps.smtpUtf8 = true; break;
      case 'DSN': caps.dsn = true; break;
      case 'PIPELINING': caps.pipelining = true; break;
      case 'STARTTLS': caps.starttls = true; break;
      case 'AUTH': {
        for (const m of args) if (/^[A-Z0-9_-]{1,20}$/i.test(m) && !caps.auth.includes(m.toUpperCase())) caps.auth.push(m.toUpperCase());
        break;
      }
      default: break;
    }
  }
  return caps;
}

/** The SASL mechanisms Postern can pass through (it must see the password to do so). */
export const PASSTHROUGH_MECHANISMS = ['PLAIN', 'LOGIN'] as const;

export function upstreamAuthMechanism(caps: UpstreamCapabilities): 'PLAIN' | 'LOGIN' | null {
  return PASSTHROUGH_MECHANISMS.find((m) => caps.auth.includes(m)) ?? null;
}

export interface ReconcileOptions {
  maxMessageSize: number;
  authMode: 'passthrough' | 'local' | 'none';
}

/**
 * smtp-server's EHLO feature lines for the client leg, reduced to what the upstream can carry:
 * SIZE is the smaller limit, 8BITMIME / SMTPUTF8 / DSN only when the upstream has them, AUTH under
 * passthrough only when the upstream offers PLAIN or LOGIN, never CHUNKING or REQUIRETLS.
 * PIPELINING and STARTTLS concern the client leg alone and stay.
 */
export function reconcileFeatures(features: readonly string[], caps: UpstreamCapabilities, opts: ReconcileOptions): string[] {
  const out: string[] = [];
  for (const line of features) {
    const keyword = (line.split(/\s+/)[0] ?? '').toUpperCase();
    switch (keyword) {
      case 'PIPELINING':
      case 'STARTTLS':
      case 'ENHANCEDSTATUSCODES':
        out.push(line);
        break;
      case '8BITMIME':
        if (caps.eightBitMime) out.push(line);
        break;
      case 'SMTPUTF8':
        if (caps.smtpUtf8) out.push(line);
        break;
      case 'DSN':
        if (caps.dsn) out.push(line);
        break;
      case 'AUTH':
        if (opts.authMode === 'local' || (opts.authMode === 'passthrough' && upstreamAuthMechanism(caps))) out.push(line);
        break;
      case 'SIZE': {
        const limit = caps.size && caps.size > 0 ? Math.min(caps.size, opts.maxMessageSize) : opts.maxMessageSize;
        out.push(`SIZE ${limit}`);
        break;
      }
      default:
        break; // CHUNKING, REQUIRETLS, XCLIENT, XFORWARD and anything unknown are not carried across
    }
  }
  return out;
}

/** RFC 3461 xtext: the decoded parameter values smtp-server hands over, encoded again for the wire. */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : '+' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

type Args = Record<string, string | boolean> | false | undefined;

function param(key: string, value: string | boolean, xtext: boolean): string {
  if (value === true) return key;
  if (value === false) return '';
  return `${key}=${xtext ? encodeXtext(value) : value}`;
}

/**
 * MAIL FROM parameters to forward: SIZE, BODY (8BITMIME), SMTPUTF8, RET/ENVID (DSN) when the
 * upstream announced the extension; everything else (AUTH=, REQUIRETLS, unknown) is dropped.
 * Returns the parameter string and the names dropped (for a debug log).
 */
export function mailParams(args: Args, caps: UpstreamCapabilities): { text: string; dropped: string[] } {
  const keep: string[] = [];
  const dropped: string[] = [];
  for (const [rawKey, value] of Object.entries(args || {})) {
    const key = rawKey.toUpperCase();
    const ok = (key === 'SIZE' && caps.size !== null && typeof value === 'string' && /^\d{1,20}$/.test(value))
      || (key === 'BODY' && caps.eightBitMime && typeof value === 'string' && /^(7BIT|8BITMIME)$/i.test(value))
      || (key === 'SMTPUTF8' && caps.smtpUtf8 && value === true)
      || ((key === 'RET' || key === 'ENVID') && caps.dsn && typeof value === 'string');
    if (ok) keep.push(param(key, value, key === 'ENVID'));
    else dropped.push(key);
  }
  return { text: keep.filter((p) => p !== '').join(' '), dropped };
}

/** RCPT TO parameters to forward: NOTIFY and ORCPT when the upstream has DSN. */
export function rcptParams(args: Args, caps: UpstreamCapabilities): { text: string; dropped: string[] } {
  const keep: string[] = [];
  const dropped: string[] = [];
  for (const [rawKey, value] of Object.entries(args || {})) {
    const key = rawKey.toUpperCase();
    if ((key === 'NOTIFY' || key === 'ORCPT') && caps.dsn && typeof value === 'string') keep.push(param(key, value, key === 'ORCPT'));
    else dropped.push(key);
  }
  return { text: keep.join(' '), dropped };
}

interface EhloInternals {
  _server: { options: { ehloFilter?: (session: SMTPServerSession, features: string[]) => string[] } };
  session: SMTPServerSession;
  send(code: number, data: string | string[], context?: unknown): void;
  handler_EHLO(command: Buffer, callback: () => void): void;
}

let installed = false;

/**
 * Lets an SMTPServer take an `ehloFilter(session, features)` option that rewrites the feature lines
 * of each EHLO reply (servers without the option are unaffected). handler_EHLO sends its reply
 * synchronously, so wrapping `send` for the duration of the call sees exactly that reply.
 */
export function installEhloFilterOption(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as EhloInternals;
  const original = proto.handler_EHLO;
  proto.handler_EHLO = function handlerEhlo(this: EhloInternals, command: Buffer, callback: () => void): void {
    const filter = this._server.options.ehloFilter;
    if (!filter) return original.call(this, command, callback);
    const send = this.send;
    this.send = (code, data, context) => {
      if (code === 250 && Array.isArray(data) && data.length > 0) {
        const [greeting = '', ...features] = data;
        return send.call(this, code, [greeting, ...filter(this.session, features)], context);
      }
      return send.call(this, code, data, context);
    };
    try {
      original.call(this, command, callback);
    } finally {
      this.send = send;
    }
  };
}
