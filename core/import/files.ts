// Readers for EML directories and Maildir/Maildir++ trees: walk the tree (no symlink loops, bounded
// depth), and yield each message file with the archive folder it belongs to. Maildir++ folders
// (".Folder.Sub") become "Folder/Sub", nested Maildirs ("Folder/Sub/cur") likewise; IMAP modified
// UTF-7 names are decoded. Trusts nothing in the tree: unreadable, empty or oversized files are failures.
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';

export type FileItem =
  | { ok: true; path: string; folder: string | null; bytes: Buffer }
  | { ok: false; path: string; folder: string | null; reason: string };

const MAX_DEPTH = 32;

async function readMessageFile(path: string, folder: string | null, maxBytes: number): Promise<FileItem> {
  try {
    const st = await stat(path);
    if (st.size > maxBytes) return { ok: false, path, folder, reason: `Message is larger than ${maxBytes} bytes` };
    const bytes = await readFile(path);
    if (bytes.length === 0) return { ok: false, path, folder, reason: 'File is empty' };
    return { ok: true, path, folder, bytes };
  } catch (err) {
    return { ok: false, path, folder, reason: `Cannot read the file: ${(err as Error).message}` };
  }
}

async function entries(dir: string): Promise<Array<{ name: string; dir: boolean; file: boolean }>> {
  const list = await readdir(dir, { withFileTypes: true });
  return list
    .map((d) => ({ name: d.name, dir: d.isDirectory(), file: d.isFile() }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every *.eml file under a directory (recursive), or the one file given. */
export async function* readEml(root: string, options: { maxBytes?: number } = {}): AsyncGenerator<FileItem> {
  const maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
  const st = await lstat(root);
  if (st.isFile()) {
    yield await readMessageFile(root, null, maxBytes);
    return;
  }
  async function* walk(dir: string, depth: number): AsyncGenerator<FileItem> {
    if (depth > MAX_DEPTH) {
      yield { ok: false, path: dir, folder: null, reason: `Directory is nested deeper than ${MAX_DEPTH} levels` };
      return;
    }
    for (const e of await entries(dir)) {
      const p = join(dir, e.name);
      if (e.dir) yield* walk(p, depth + 1);
      else if (e.file && /\.eml$/i.test(e.name)) yield await readMessageFile(p, null, maxBytes);
    }
  }
  yield* walk(root, 0);
}

/** IMAP modified UTF-7 (RFC 3501 5.1.3) → Unicode; malformed sequences are kept as they are. */
export function decodeModifiedUtf7(name: string): string {
  return name.replace(/&([A-Za-z0-9+,]*)-/g, (all, b64: string) => {
    if (b64 === '') return '&';
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0) return all;
    return bytes.swap16().toString('utf16le');
  });
}

/** The folder a Maildir directory stands for, relative to the root ("" → the inbox, null). */
export function maildirFolder(rel: string): string | null {
  if (rel === '') return null;
  const parts: string[] = [];
  for (const seg of rel.split(sep)) {
    // Maildir++: ".Folder.Sub" is one directory holding the folder "Folder/Sub".
    if (seg.startsWith('.')) parts.push(...seg.slice(1).split('.').filter((s) => s !== ''));
    else parts.push(seg);
  }
  const name = parts.map(decodeModifiedUtf7).join('/');
  return name === '' || /^inbox$/i.test(name) ? null : name;
}

/** Every message of a Maildir or Maildir++ tree: cur/ and new/ of the root and of each folder. */
export async function* readMaildir(root: string, options: { maxBytes?: number } = {}): AsyncGenerator<FileItem> {
  const maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
  const st = await stat(root);
  if (!st.isDirectory()) {
    yield { ok: false, path: root, folder: null, reason: 'Not a directory (a Maildir has cur/, new/ and tmp/)' };
    return;
  }
  let found = false;
  async function* walk(dir: string, depth: number): AsyncGenerator<FileItem> {
    if (depth > MAX_DEPTH) {
      yield { ok: false, path: dir, folder: null, reason: `Directory is nested deeper than ${MAX_DEPTH} levels` };
      return;
    }
    const list = await entries(dir);
    const isMaildir = list.some((e) => e.dir && (e.name === 'cur' || e.name === 'new'));
    if (isMaildir) {
      found = true;
      const folder = maildirFolder(relative(root, dir));
      for (const sub of ['cur', 'new']) {
        if (!list.some((e) => e.dir && e.name === sub)) continue;
        for (const f of await entries(join(dir, sub))) {
          if (!f.file || f.name.startsWith('.')) continue;
          yield await readMessageFile(join(dir, sub, f.name), folder, maxBytes);
        }
      }
    }
    for (const e of list) {
      if (!e.dir || e.name === 'cur' || e.name === 'new' || e.name === 'tmp') continue;
      yield* walk(join(dir, e.name), depth + 1);
    }
  }
  yield* walk(root, 0);
  if (!found) yield { ok: false, path: root, folder: null, reason: `No Maildir found under "${basename(root)}" (no cur/ or new/ directory)` };
}
