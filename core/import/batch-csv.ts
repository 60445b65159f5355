// The mailbox list of a CSV batch import: a header row naming the columns (login, password or
// passwordFile, address, user; any order, case-insensitive), then one mailbox per row. Quoted fields
// follow RFC 4180 ("" inside quotes). Each row is checked on its own: a bad row becomes an error of
// that mailbox and never stops the others. Password files are resolved relative to the CSV file.
// Trusts nothing in the file; never echoes a password.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { PosternError } from '../errors.ts';
import { USER_NAME } from '../storage/types.ts';

export interface CsvMailbox {
  /** 1-based line of the row (for errors). */
  line: number;
  login: string;
  password?: string;
  passwordFile?: string;
  address: string;
  user: string;
}

export type CsvRow = { ok: true; mailbox: CsvMailbox } | { ok: false; line: number; login: string; reason: string };

const COLUMNS = ['login', 'password', 'passwordfile', 'address', 'user'] as const;
const MAX_ROWS = 100_000;
const ADDRESS = /^[^\s@<>",;]+@[^\s@<>",;]+$/;

/** Split CSV text into records of fields (quotes, escaped quotes, CRLF or LF, newlines inside quotes). */
export function parseCsv(text: string): Array<{ line: number; fields: string[] }> {
  const out: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = 0;
  const endRecord = (): void => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: start, fields });
    fields = [];
    field = '';
  };
  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      i++;
      continue;
    } else if (c === '\n') {
      endRecord();
      line++;
      start = line;
    } else field += c;
    i++;
  }
  if (quoted) throw new PosternError('INVALID_INPUT', `CSV line ${start}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0) endRecord();
  return out;
}

/** The mailboxes of a CSV text; `baseDir` anchors relative password files. */
export function csvMailboxes(text: string, baseDir: string): CsvRow[] {
  const records = parseCsv(text.replace(/^\uFEFF/, ''));
  const header = records.shift();
  if (!header) throw new PosternError('INVALID_INPUT', 'The CSV file is empty (a header row is needed: login,password,address,user)');
  const names = header.fields.map((f) => f.trim().toLowerCase());
  const unknown = names.filter((n) => !(COLUMNS as readonly string[]).includes(n));
  if (unknown.length) throw new PosternError('INVALID_INPUT', `CSV header: unknown column(s) ${unknown.map((n) => `"${n}"`).join(', ')} (known: login, password, passwordFile, address, user)`);
  if (!names.includes('login')) throw new PosternError('INVALID_INPUT', 'CSV header: a "login" column is needed');
  if (!names.includes('password') && !names.includes('passwordfile')) throw new PosternError('INVALID_INPUT', 'CSV header: a "password" or "passwordFile" column is needed');
  if (records.length > MAX_ROWS) throw new PosternError('INVALID_INPUT', `The CSV file lists more than ${MAX_ROWS} mailboxes`);
  const seen = new Set<string>();
  return records.map(({ line, fields }): CsvRow => {
    const get = (col: (typeof COLUMNS)[number]): string => {
      const i = names.indexOf(col);
      return i < 0 ? '' : (fields[i] ?? '');
    };
    const login = get('login').trim();
    const bad = (reason: string): CsvRow => ({ ok: false, line, login, reason: `CSV line ${line}: ${reason}` });
    if (fields.length !== names.length) return bad(`${fields.length} fields where the header has ${names.length}`);
    if (login === '' || login.length > 255 || /[\x00-\x1f]/.test(login)) return bad('the login is empty, too long or has control characters');
    if (seen.has(login)) return bad(`the login "${login}" is listed twice`);
    seen.add(login);
    const password = get('password');
    const passwordFile = get('passwordfile').trim();
    if ((password === '') === (passwordFile === '')) return bad('give exactly one of password, passwordFile');
    const address = get('address').trim();
    if (address !== '' && !ADDRESS.test(address)) return bad(`"${address}" is not an e-mail address`);
    let user = get('user').trim();
    if (user === '' && address !== '') user = (address.split('@')[0] ?? '').toLowerCase();
    if (!USER_NAME.test(user)) return bad(user === '' ? 'no archive user (user column, or an address to take it from)' : `"${user}" is not a valid user name`);
    return {
      ok: true,
      mailbox: {
        line, login, address, user,
        ...(password !== '' ? { password } : { passwordFile: isAbsolute(passwordFile) ? passwordFile : join(baseDir, passwordFile) }),
      },
    };
  });
}

export function readCsvMailboxes(file: string): CsvRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PosternError('CONFIG_INVALID', `The CSV file "${file}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return csvMailboxes(text, dirname(file));
}
