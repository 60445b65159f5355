// Exports opened by real programs (Debian): the mbox from `postern export --format mbox` in mutt (in a
// private tmux server: the index shows every message, one opens in the pager), the zip tested by
// `unzip -t`, unpacked by unzip and every file checked by `sha256sum -c SHA256SUMS` alone. Real-world
// messages from the SpamAssassin corpus plus ones that test the mbox quoting (From lines, CRLF and LF,
// no final newline).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCorpus } from '../helpers/corpus.ts';
import { makeTempDir, run, runOk, startPostern, type PosternServer } from './harness.ts';
import { TmuxScreen } from './tmux.ts';

const headerOf = (m: Buffer): string => {
  const end = m.indexOf('\n\n') >= 0 ? m.indexOf('\n\n') : m.length;
  const crlf = m.indexOf('\r\n\r\n');
  return m.subarray(0, crlf >= 0 && crlf < end ? crlf : end).toString('latin1').replace(/\r?\n[ \t]/g, ' ');
};
const subjectOf = (m: Buffer): string => /^Subject:[ \t]*(.*)$/im.exec(headerOf(m))?.[1]?.trim() ?? '';

/** Corpus messages with plain single-part bodies and short ASCII subjects that differ in their first 30 characters. */
const CORPUS = (() => {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (const m of loadCorpus()) {
    const s = subjectOf(m);
    if (!/^[A-Za-z][ -~]{11,50}$/.test(s) || s.includes('=?') || /^content-type:\s*multipart/im.test(headerOf(m)) || m.length > 50_000) continue;
    if (seen.has(s.slice(0, 30))) continue;
    seen.add(s.slice(0, 30));
    out.push(m);
    if (out.length === 6) break;
  }
  return out;
})();
const TRICKY = [
  'From: Partner <partner@client.example>\r\nTo: alice@example.com\r\nSubject: Quoting check CRLF\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nFrom the start of a line\r\n>From quoted once\r\nA distinctive CRLF body line\r\n',
  'From: other@else.example\nTo: alice@example.com\nSubject: Quoting check no final newline\nDate: Tue, 3 Nov 2026 10:00:00 +0000\n\nFrom here\nThe very last line has no newline',
];
const N = CORPUS.length + TRICKY.length;

let pg: PosternServer;
const tmp = makeTempDir('postern-export-interop-');
const screen = new TmuxScreen();

before(async () => {
  assert.equal(CORPUS.length, 6, 'enough plain corpus messages');
  pg = await startPostern({ name: 'export' });
  await pg.addUser('alice', ['alice@example.com']);
  const dir = join(tmp.path, 'in');
  mkdirSync(dir);
  CORPUS.forEach((m, i) => writeFileSync(join(dir, `c${i}.eml`), m));
  TRICKY.forEach((m, i) => writeFileSync(join(dir, `t${i}.eml`), m));
  await pg.cliOk(['import', 'eml', dir, '--user', 'alice', '--parallel', '1']);
  await pg.waitDrained();
});
after(async () => {
  await screen.kill();
  await pg?.stop();
  tmp.cleanup();
});

test('mutt -f opens the exported mbox: every message in the index, one in the pager', async () => {
  const box = join(tmp.path, 'alice.mbox');
  await pg.diagnose('export-mbox', () => pg.cliOk(['export', '--user', 'alice', '--format', 'mbox', '--output', box]));
  const rc = join(tmp.path, 'muttrc');
  writeFileSync(rc, [
    `set folder = "${tmp.path}"`,
    'set read_only = yes',
    'set mbox_type = mbox',
    'set sort = mailbox-order',
    'set mark_old = no',
    'set header_cache = ""',
    'set wait_key = no',
    'set pager_stop = yes',
    'set charset = "utf-8"',
    'set index_format = "%4C %-20.20F %s"',
    'ignore *',
    'unignore from: to: subject: date:',
    '',
  ].join('\n'));
  await screen.start('mutt', `env HOME=${tmp.path} TERM=xterm LANG=C.UTF-8 mutt -n -F ${rc} -f ${box}`);
  const subjects = [...CORPUS.map(subjectOf), 'Quoting check CRLF', 'Quoting check no final newline'];
  const index = await screen.waitScreen('mutt', 'every subject', (s) => subjects.every((sub) => s.includes(sub.slice(0, 30))));
  assert.match(index, new RegExp(`Msgs:${N}\\b`), `mutt counts ${N} messages (the no-final-newline mark is read as part of the From_ line):\n${index}`);
  // The last message (no final newline) opens and shows its last line.
  await screen.send('mutt', '*', true); // last-entry
  await screen.send('mutt', 'Enter');
  const pager = await screen.waitScreen('mutt', 'the pager of the last message', (s) => s.includes('Subject: Quoting check no final newline'));
  assert.ok(pager.includes('The very last line has no newline'), pager);
  await screen.send('mutt', 'q');
  await screen.send('mutt', 'q');
});

test('unzip -t accepts the zip export; sha256sum -c SHA256SUMS checks every unpacked file', async () => {
  const zip = join(tmp.path, 'alice.zip');
  await pg.cliOk(['export', '--user', 'alice', '--format', 'zip', '--output', zip]);
  const t = await runOk('unzip', ['-t', zip]);
  assert.match(t.stdout.toString(), /No errors detected in compressed data/);
  assert.equal(t.stdout.toString().match(/ OK$/gm)?.length, N + 2, 'every message, the manifest and SHA256SUMS');
  const out = join(tmp.path, 'unzipped');
  await runOk('unzip', ['-q', zip, '-d', out]);
  const check = await runOk('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
  assert.equal(check.stdout.toString().match(/: OK$/gm)?.length, N + 1);
  assert.equal(readdirSync(join(out, 'alice', 'Inbox')).length, N);
  // The zip's own SHA-256 beside it.
  await runOk('sha256sum', ['-c', 'alice.zip.SHA256SUMS'], { cwd: tmp.path });
  // A changed byte is caught by sha256sum alone.
  const victim = join(out, 'alice', 'Inbox', '1.eml');
  writeFileSync(victim, Buffer.concat([readFileSync(victim), Buffer.from('x')]));
  const bad = await run('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: out });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout.toString(), /alice\/Inbox\/1\.eml: FAILED/);
});
