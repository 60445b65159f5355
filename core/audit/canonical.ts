// The canonical form of an audit record, which its hash covers: JSON with object keys sorted at every
// level, no whitespace, undefined members dropped. Two records with the same content have the same bytes
// whatever order their fields were built in. Also the validation of events arriving from callers: small,
// JSON-only details, bounded strings. Trusts nothing; hands on plain values.
import { createHash } from 'node:crypto';
import { PosternError } from '../errors.ts';
import type { AuditCategory, AuditEvent, AuditRecord } from './types.ts';

export const GENESIS = '0'.repeat(64);
export const CATEGORIES: readonly AuditCategory[] = ['config', 'compliance', 'admin', 'login', 'delete', 'access'];
const OUTCOMES = ['success', 'failure', 'denied'] as const;
const MAX_FIELD = 1024;
const MAX_DETAILS = 16 * 1024;
const MAX_DEPTH = 8;

/** Sorted-key JSON of a JSON value; throws INVALID_INPUT on values JSON cannot carry exactly. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_DEPTH) throw new PosternError('INVALID_INPUT', `Audit details nest deeper than ${MAX_DEPTH} levels`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new PosternError('INVALID_INPUT', `Audit details hold a number JSON cannot represent ("${value}")`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const parts = Object.keys(value).sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], depth + 1)}`);
    return `{${parts.join(',')}}`;
  }
  throw new PosternError('INVALID_INPUT', `Audit details hold a ${typeof value} value, which is not JSON`);
}

/** Hex SHA-256 of the canonical form of everything in the record except its own hash. */
export function recordHash(record: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...body } = record;
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function field(name: string, v: unknown, allowEmpty: boolean): string {
  if (typeof v !== 'string') throw new PosternError('INVALID_INPUT', `Audit event ${name} must be a string`);
  if (!allowEmpty && v === '') throw new PosternError('INVALID_INPUT', `Audit event ${name} must not be empty`);
  if (v.length > MAX_FIELD) throw new PosternError('INVALID_INPUT', `Audit event ${name} is longer than ${MAX_FIELD} characters`);
  return v;
}

/** A caller's event checked and copied (only the known fields); INVALID_INPUT when anything is off. */
export function validEvent(e: AuditEvent): AuditEvent {
  if (typeof e !== 'object' || e === null) throw new PosternError('INVALID_INPUT', 'Audit event must be an object');
  if (!CATEGORIES.includes(e.category)) throw new PosternError('INVALID_INPUT', `Audit category "${String(e.category)}" is unknown`);
  if (!(OUTCOMES as readonly string[]).includes(e.outcome)) throw new PosternError('INVALID_INPUT', `Audit outcome "${String(e.outcome)}" is unknown`);
  const action = field('action', e.action, false);
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(action)) throw new PosternError('INVALID_INPUT', `Audit action "${action}" must be a dotted name`);
  const out: AuditEvent = {
    category: e.category, action, actor: field('actor', e.actor, false), target: field('target', e.target, true), outcome: e.outcome,
  };
  if (e.remote !== undefined) out.remote = field('remote', e.remote, true);
  if (e.details !== undefined) {
    if (typeof e.details !== 'object' || e.details === null || Array.isArray(e.details)) throw new PosternError('INVALID_INPUT', 'Audit details must be an object');
    const text = canonicalJson(e.details);
    if (text.length > MAX_DETAILS) throw new PosternError('INVALID_INPUT', `Audit details exceed ${MAX_DETAILS} characters`);
    out.details = JSON.parse(text) as Record<string, unknown>;
  }
  return out;
}

/** The stored bytes of a record: its canonical form with the hash included. */
export function encodeRecord(record: AuditRecord): Buffer {
  return Buffer.from(canonicalJson(record));
}

/** A stored record parsed and shape-checked, or a reason it cannot be read. */
export function decodeRecord(data: Buffer): AuditRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch {
    return 'the stored bytes are not valid JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the stored value is not an object';
  const r = v as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq)) return 'it has no numeric seq';
  for (const k of ['at', 'prev', 'hash', 'action', 'actor', 'target', 'category', 'outcome']) {
    if (typeof r[k] !== 'string') return `its field "${k}" is missing or not a string`;
  }
  return v as AuditRecord;
}
