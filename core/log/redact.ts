// Credential redaction for log records, applied to every record before it is written: a value under a
// key named like a credential (password, pass, secret, token, authorization, auth, cookie, api key,
// private key) is replaced at any depth of nesting, and protocol text that carries one (SMTP/IMAP
// AUTH, IMAP LOGIN, POP3 PASS, HTTP Basic/Bearer) keeps its verb and loses the secret. Errors become
// { message, code }. Trusts nothing about its input: cycles, deep nesting and odd objects are bounded.

export const REDACTED = '[redacted]';
const MAX_DEPTH = 10;
const MAX_ARRAY = 200;

/** Keys whose value is a credential wherever they appear ("auth" alone; "authorization", "passwd", "apiKey" …). */
const SECRET_KEY = /^auth$|pass(word|wd|phrase)?|secret|token|authori[sz]ation|credential|cookie|api[-_]?key|private[-_]?key/i;

/** Protocol text carrying a credential: the prefix is kept, what follows is replaced. */
const SECRET_TEXT: Array<[RegExp, string]> = [
  // SMTP "AUTH PLAIN <b64>", "AUTH LOGIN <b64>", IMAP "tag AUTHENTICATE PLAIN <b64>"
  [/\b(AUTH(?:ENTICATE)?\s+[A-Za-z0-9_-]+)[ \t]+\S+/gi, `$1 ${REDACTED}`],
  // IMAP "tag LOGIN user password": exactly two arguments (atoms, quoted strings or a literal's
  // announcement), so prose such as "POP3 login through the proxy" is left alone.
  [/^(\S+[ \t]+LOGIN[ \t]+(?:"(?:[^"\\]|\\.)*"|\S+))[ \t]+(?:"(?:[^"\\]|\\.)*"|\{\d+\+?\}|\S+)[ \t]*$/gim, `$1 ${REDACTED}`],
  // POP3 "PASS secret", "APOP user digest"
  [/\b(PASS)[ \t]+\S.*$/gim, `$1 ${REDACTED}`],
  [/\b(APOP[ \t]+\S+)[ \t]+\S+/gi, `$1 ${REDACTED}`],
  // HTTP Authorization values, in headers or URLs' user:password@
  [/\b(Basic|Bearer)[ \t]+[A-Za-z0-9+/=._~-]+/gi, `$1 ${REDACTED}`],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, `$1${REDACTED}@`],
];

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export function redactText(text: string): string {
  let out = text;
  for (const [re, replacement] of SECRET_TEXT) out = out.replace(re, replacement);
  return out;
}

/** A copy of `value` safe to write: credentials replaced at any depth, errors flattened, cycles cut. */
export function redactValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { message: redactText(value.message), ...(code !== undefined ? { code: redactValue(code, depth + 1, seen) } : {}) };
  }
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      const out = value.slice(0, MAX_ARRAY).map((v) => redactValue(v, depth + 1, seen));
      if (value.length > MAX_ARRAY) out.push(`[${value.length - MAX_ARRAY} more]`);
      return out;
    }
    if (value instanceof Map) return redactFields(Object.fromEntries(value), depth, seen);
    if (value instanceof Set) return redactValue([...value], depth, seen);
    const json = (value as { toJSON?: unknown }).toJSON;
    if (typeof json === 'function') return redactValue((json as () => unknown).call(value), depth + 1, seen);
    return redactFields(value as Record<string, unknown>, depth, seen);
  } finally {
    seen.delete(value);
  }
}

/** The fields of one record (or one nested object) with every credential replaced. */
export function redactFields(fields: Record<string, unknown>, depth = 0, seen: WeakSet<object> = new WeakSet()): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = isSecretKey(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redactValue(v, depth + 1, seen);
  }
  return out;
}
