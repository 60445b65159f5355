// The structured logger (core/log.ts on pino): levels, child bindings, JSON and terminal forms without
// a terminal present, credentials censored at any depth (property test over random nestings, key
// names and case) and in protocol lines, errors flattened, cycles cut, and the syslog priority prefix
// when stderr is the stream systemd's JOURNAL_STREAM names (checked in a child process whose stderr
// is a file announced the same way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { createLogger, createMemoryLogger, type LogFields } from '../../../core/log.ts';
import { redactText } from '../../../core/log/redact.ts';

function capture(format: 'json' | 'pretty', level: 'debug' | 'info' = 'debug'): { log: ReturnType<typeof createLogger>; out: string[] } {
  const out: string[] = [];
  return { log: createLogger({ level, format, sink: { write: (l) => out.push(l) } }), out };
}

test('JSON lines carry time, level, msg, child bindings and fields; levels below the minimum are dropped', () => {
  const { log, out } = capture('json', 'info');
  const conn = log.child({ conn: 'c1' }).child({ msgId: 'm1' });
  conn.debug('hidden');
  conn.info('shown', { n: 1 });
  conn.warn('careful');
  conn.error('broken', { err: Object.assign(new Error('disk gone'), { code: 'EIO' }) });
  assert.equal(out.length, 3);
  const recs = out.map((l) => JSON.parse(l) as LogFields);
  assert.deepEqual(recs.map((r) => [r.level, r.msg, r.conn, r.msgId]), [
    ['info', 'shown', 'c1', 'm1'], ['warn', 'careful', 'c1', 'm1'], ['error', 'broken', 'c1', 'm1'],
  ]);
  assert.equal(recs[0]?.n, 1);
  assert.match(String(recs[0]?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(recs[2]?.err, { message: 'disk gone', code: 'EIO' });
  for (const l of out) assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), 'one line per record');
});

test('the terminal form is one readable line, chosen by format, not by a terminal being present', () => {
  const { log, out } = capture('pretty');
  log.child({ conn: 'a b' }).info('Connection opened', { port: 25, password: 'hunter2' });
  assert.equal(out.length, 1);
  assert.match(out[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3} INFO {2}Connection opened conn="a b" port=25 password=\[redacted\]\n$/);
});

test('a message with printf-like text is written as given', () => {
  const { log, out } = capture('json');
  log.info('100% of %s done %d');
  assert.equal((JSON.parse(out[0] ?? '{}') as LogFields).msg, '100% of %s done %d');
});

const SECRET_KEYS = ['password', 'Password', 'PASS', 'pass', 'passwd', 'smtpPassword', 'token', 'apiToken', 'accessToken', 'secret', 'clientSecret',
  'authorization', 'Authorization', 'auth', 'AUTH', 'credentials', 'cookie', 'apiKey', 'api_key', 'privateKey', 'passphrase'];
const PLAIN_KEYS = ['user', 'host', 'port', 'listener', 'conn', 'subject', 'items', 'a', 'b', 'authMode', 'folder'];

/** A random JSON-like tree with `secret` placed under a credential key somewhere inside it. */
const treeWithSecret = (secret: string) => fc.letrec((tie) => ({
  leaf: fc.oneof(fc.string({ maxLength: 8 }).filter((s) => !s.includes(secret)), fc.integer(), fc.boolean(), fc.constant(null)),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...PLAIN_KEYS), tie('node'), { maxKeys: 3 }),
  ),
})).node.chain((tree) => fc.tuple(fc.constant(tree), fc.array(fc.nat(), { maxLength: 12 }), fc.constantFrom(...SECRET_KEYS), fc.boolean()));

/** Put { key: secret } (or the secret as an object under it) at a path chosen by `steps`. */
function plant(tree: unknown, steps: number[], key: string, secret: string, asObject: boolean): Record<string, unknown> {
  const root: Record<string, unknown> = { wrap: tree };
  let at: Record<string, unknown> | unknown[] = root;
  for (const s of steps) {
    const next: unknown = Array.isArray(at) ? at[s % Math.max(at.length, 1)] : Object.values(at)[s % Math.max(Object.keys(at).length, 1)];
    if (next === null || typeof next !== 'object') break;
    at = next as Record<string, unknown> | unknown[];
  }
  const value = asObject ? { user: 'u', value: secret, list: [secret] } : secret;
  if (Array.isArray(at)) at.push({ [key]: value });
  else at[key] = value;
  return root;
}

test('a credential under any credential-like key, at any depth, never reaches the output (property)', () => {
  const secret = 'S3cr3t-Value-zq';
  fc.assert(fc.property(treeWithSecret(secret), fc.constantFrom('json', 'pretty'), fc.boolean(), ([tree, steps, key, asObject], format, inChild) => {
    const fields = plant(tree, steps, key, secret, asObject);
    const { log, out } = capture(format as 'json' | 'pretty');
    if (inChild) log.child(fields).info('record');
    else log.info('record', fields);
    assert.equal(out.length, 1);
    assert.ok(!(out[0] ?? '').includes(secret), `secret written: ${out[0]}`);
    assert.ok((out[0] ?? '').includes('[redacted]'), 'the key stays, its value is replaced');
  }), { numRuns: 300 });
});

test('a credential 50 levels down is still not written (the walk stops, it does not pass it through)', () => {
  let deep: Record<string, unknown> = { password: 'very-deep-secret' };
  for (let i = 0; i < 50; i++) deep = { inner: deep };
  const { log, out } = capture('json');
  log.info('deep', { deep });
  assert.ok(!(out[0] ?? '').includes('very-deep-secret'));
});

test('cycles, Maps, Sets, buffers and errors inside fields are written safely', () => {
  const { log, out } = capture('json');
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  log.info('odd values', {
    cyclic,
    map: new Map([['token', 'map-secret'], ['host', 'h']]),
    set: new Set(['x']),
    buf: Buffer.from('raw bytes'),
    nested: { err: new Error('inner failure') },
    big: 10n,
  });
  const rec = JSON.parse(out[0] ?? '{}') as Record<string, unknown>;
  assert.deepEqual(rec.cyclic, { name: 'loop', self: '[circular]' });
  assert.deepEqual(rec.map, { token: '[redacted]', host: 'h' });
  assert.deepEqual(rec.set, ['x']);
  assert.equal(rec.buf, '[9 bytes]');
  assert.deepEqual(rec.nested, { err: { message: 'inner failure' } });
  assert.equal(rec.big, '10');
});

test('protocol lines keep their verb and lose the credential', () => {
  const cases: Array<[string, string]> = [
    ['AUTH PLAIN AGFsaWNlAHNlY3JldA==', 'AUTH PLAIN [redacted]'],
    ['auth login YWxpY2U=', 'auth login [redacted]'],
    ['A1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==', 'A1 AUTHENTICATE PLAIN [redacted]'],
    ['a001 LOGIN alice "pa ss word"', 'a001 LOGIN alice [redacted]'],
    ['a001 login "alice smith" secret', 'a001 login "alice smith" [redacted]'],
    ['PASS hunter2', 'PASS [redacted]'],
    ['APOP alice c4c9334bac560ecc979e58001b3e22fb', 'APOP alice [redacted]'],
    ['Authorization: Basic YWxpY2U6c2VjcmV0', 'Authorization: Basic [redacted]'],
    ['Bearer abc.def-ghi', 'Bearer [redacted]'],
    ['upstream imap://alice:secret@mail.example:993', 'upstream imap://alice:[redacted]@mail.example:993'],
    ['MAIL FROM:<a@b.example>', 'MAIL FROM:<a@b.example>'],
    ['Passing through upstream', 'Passing through upstream'],
  ];
  for (const [input, want] of cases) assert.equal(redactText(input), want, input);
  const { logger, lines } = createMemoryLogger();
  logger.child({ last: 'AUTH PLAIN AGFsaWNlAHNlY3JldA==' }).debug('C: PASS hunter2', { lines: ['EHLO x', 'AUTH LOGIN YWxpY2U='] });
  const text = JSON.stringify(lines);
  for (const secret of ['AGFsaWNlAHNlY3JldA==', 'hunter2', 'YWxpY2U=']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
});

test('under systemd (stderr is the JOURNAL_STREAM) JSON lines carry the syslog priority; elsewhere they do not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-journal-'));
  try {
    const script = `import { createLogger } from ${JSON.stringify(join(process.cwd(), 'core/log.ts'))};
const log = createLogger({ level: 'debug', format: 'json' });
log.debug('d'); log.info('i'); log.warn('w'); log.error('e', { password: 'x' });`;
    const run = (file: string, env: NodeJS.ProcessEnv): string[] => {
      const fd = openSync(file, 'w');
      try {
        const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', fd], env, timeout: 30_000 });
        assert.equal(r.status, 0);
      } finally {
        closeSync(fd);
      }
      return readFileSync(file, 'utf8').trim().split('\n');
    };
    const journalFile = join(dir, 'journal');
    closeSync(openSync(journalFile, 'w'));
    const st = statSync(journalFile, { bigint: true });
    const env = { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` };
    const lines = run(journalFile, env);
    assert.deepEqual(lines.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>']);
    assert.equal((JSON.parse(lines[3]?.slice(3) ?? '{}') as LogFields).password, '[redacted]');
    // Another file than the announced stream: bare JSON.
    const other = run(join(dir, 'other'), env);
    assert.ok(other.every((l) => l.startsWith('{')), other.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
