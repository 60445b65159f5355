// Reads the MIME fields of one entity's header (Content-Type with RFC 2231 parameters, transfer
// encoding, id, description, MD5, disposition, language, location) as BODYSTRUCTURE needs them.
// Trusts nothing: malformed values give defaults, nothing throws. Values keep their original case,
// as Dovecot reports them. Hands on MimeFields.
import type { HeaderField } from '../../../core/mime/headers.ts';

export type Params = Array<[string, string]>;

export interface MimeFields {
  type: string;
  subtype: string;
  params: Params;
  /** The boundary parameter (multipart), when present. */
  boundary: string | null;
  charset: string | null;
  id: string | null;
  description: string | null;
  encoding: string | null;
  md5: string | null;
  disposition: { value: string; params: Params } | null;
  language: string[];
  location: string | null;
}

const MAX_PARAMS = 100;

function first(fields: HeaderField[], name: string): string | null {
  for (const f of fields) if (f.name.toLowerCase() === name) return f.value;
  return null;
}

function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && i + 1 < s.length) { if (depth === 0) out += c + s[i + 1]; i++; continue; }
    if (!quoted && c === '(') { depth++; continue; }
    if (!quoted && c === ')' && depth > 0) { depth--; continue; }
    if (depth === 0) { if (c === '"') quoted = !quoted; out += c; }
  }
  return out;
}

/** Splits "value; a=1; b="x;y"" into the value and its parameters (RFC 2231 continuations merged). */
export function parseStructured(raw: string): { value: string; params: Params } {
  const s = stripComments(raw);
  const pieces: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && quoted && i + 1 < s.length) { cur += c + s[i + 1]; i++; continue; }
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) { pieces.push(cur); cur = ''; continue; }
    cur += c;
  }
  pieces.push(cur);
  const value = (pieces.shift() ?? '').trim();
  const plain: Params = [];
  const extended = new Map<string, { base: string; star: boolean; parts: Map<number, string> }>();
  for (const piece of pieces.slice(0, MAX_PARAMS)) {
    const eq = piece.indexOf('=');
    if (eq <= 0) continue;
    const name = piece.slice(0, eq).trim();
    let v = piece.slice(eq + 1).trim();
    if (v.startsWith('"')) v = v.slice(1, v.endsWith('"') && v.length > 1 ? -1 : undefined).replace(/\\(.)/g, '$1');
    if (name === '') continue;
    const m = /^(.+?)\*(?:(\d{1,3})(\*)?)?$/.exec(name);
    if (!m) { plain.push([name, v]); continue; }
    const base = m[1] as string;
    const key = base.toLowerCase();
    const e = extended.get(key) ?? { base, star: false, parts: new Map<number, string>() };
    const n = m[2] === undefined ? 0 : Number(m[2]);
    if (m[2] === undefined || m[3] !== undefined) e.star = true;
    if (!e.parts.has(n)) e.parts.set(n, v);
    extended.set(key, e);
  }
  // RFC 2231 continuations are joined in order after the plain parameters (as Dovecot lists them);
  // an encoded one keeps its charset'lang' prefix under "name*".
  const params: Params = [...plain];
  for (const e of extended.values()) {
    const joined = [...e.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v).join('');
    params.push([e.star ? `${e.base}*` : e.base, joined]);
  }
  return { value, params };
}

const TOKEN = /^[^\s()<>@,;:\\"/[\]?=]+$/;

export function mimeFieldsOf(fields: HeaderField[], defaultType: string): MimeFields {
  let type = defaultType.split('/')[0] as string;
  let subtype = defaultType.split('/')[1] as string;
  let params: Params = [];
  const ct = first(fields, 'content-type');
  if (ct !== null) {
    const parsed = parseStructured(ct);
    const slash = parsed.value.indexOf('/');
    const t = slash < 0 ? '' : parsed.value.slice(0, slash).trim();
    const st = slash < 0 ? '' : parsed.value.slice(slash + 1).trim();
    if (TOKEN.test(t) && TOKEN.test(st)) {
      type = t;
      subtype = st;
      params = parsed.params;
    } else {
      // An unparseable type is text/plain (RFC 2045 5.2); its parameters still count.
      type = 'text';
      subtype = 'plain';
      params = parsed.params;
    }
  }
  const param = (name: string): string | null => params.find(([k]) => k.toLowerCase() === name)?.[1] ?? null;
  const charset = param('charset');
  if (type.toLowerCase() === 'text' && charset === null) params = [...params, ['charset', 'us-ascii']];
  const disp = first(fields, 'content-disposition');
  const dispParsed = disp === null ? null : parseStructured(disp);
  const lang = first(fields, 'content-language');
  const encoding = first(fields, 'content-transfer-encoding');
  return {
    type, subtype, params,
    boundary: type.toLowerCase() === 'multipart' ? param('boundary') : null,
    charset: type.toLowerCase() === 'text' ? (charset ?? 'us-ascii') : charset,
    id: first(fields, 'content-id'),
    description: first(fields, 'content-description'),
    encoding: encoding === null ? null : stripComments(encoding).trim() || null,
    md5: first(fields, 'content-md5'),
    disposition: dispParsed && dispParsed.value !== '' ? { value: dispParsed.value, params: dispParsed.params } : null,
    language: lang === null ? [] : stripComments(lang).split(',').map((l) => l.trim()).filter((l) => l !== ''),
    location: first(fields, 'content-location'),
  };
}
