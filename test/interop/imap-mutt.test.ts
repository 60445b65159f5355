// Interop with mutt (Debian), a real terminal mail client, driven in a private tmux server: it opens
// INBOX over IMAP (implicit TLS, and STARTTLS) on Postern's imap plugin and, as the reference, on a
// private Dovecot with the same corpus messages; the index must list the messages' subjects, and
// opening one must show its Subject header and a line of its body in the pager (capture-pane).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTempDir, run, runOk, sleep } from './harness.ts';
import { corpusSample, headerValue, selectedTargets, startTarget, type ImapTarget } from './imap-targets.ts';

const N = 6;
/** Plain ASCII subjects that fit in the index, so what mutt shows can be matched literally. */
const INBOX = corpusSample(60).filter((m) => /^Subject: [ -~]{12,60}\r\n(?![ \t])/im.test(m.subarray(0, m.indexOf('\r\n\r\n') + 2).toString('latin1')) && !/=\?/.test(headerValue(m, 'Subject') ?? '')
  && !/^content-type:\s*multipart/im.test(m.subarray(0, m.indexOf('\r\n\r\n')).toString('latin1'))).slice(0, N);

function subjectOf(m: Buffer): string {
  return headerValue(m, 'Subject')!;
}

/** A distinctive line of the body (letters and spaces, not quoted) to look for in the pager. */
function bodyLine(m: Buffer): string {
  const body = m.subarray(m.indexOf('\r\n\r\n') + 4).toString('latin1');
  const line = body.split('\r\n').slice(0, 20).map((l) => l.trim()).find((l) => /^[A-Za-z][A-Za-z ,.'-]{15,60}$/.test(l));
  return line ?? '';
}

for (const name of selectedTargets()) {
  describe(`mutt in tmux against ${name}`, () => {
    let t: ImapTarget;
    const tmp = makeTempDir('mutt-');
    const socket = `postern-mutt-${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmux = (args: string[]): Promise<Buffer> => runOk('tmux', ['-L', socket, ...args], { timeoutMs: 10_000 }).then((r) => r.stdout);
    const screen = async (): Promise<string> => (await tmux(['capture-pane', '-p', '-t', 'mutt'])).toString();
    const waitScreen = async (what: string, ok: (s: string) => boolean, timeoutMs = 20_000): Promise<string> => {
      const deadline = Date.now() + timeoutMs;
      let s = '';
      while (Date.now() < deadline) {
        s = await screen();
        if (ok(s)) return s;
        await sleep(200);
      }
      throw new Error(`mutt screen never showed ${what}:\n${s}\n--- ${name} log tail ---\n${t.logs().split('\n').slice(-20).join('\n')}`);
    };

    before(async () => {
      assert.equal(INBOX.length, N, 'enough plain-subject messages in the corpus sample');
      t = await startTarget(name, INBOX, []);
    });
    after(async () => {
      await run('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
      await t?.stop();
      tmp.cleanup();
    });

    const startMutt = async (session: string, url: string): Promise<void> => {
      const rc = join(tmp.path, `muttrc-${session}`);
      writeFileSync(rc, [
        `set imap_user = "${t.user}"`,
        `set imap_pass = "${t.password}"`,
        `set certificate_file = "${t.caFile}"`,
        'set ssl_verify_host = no',
        'set ssl_starttls = yes',
        'set ssl_force_tls = yes',
        'set read_only = yes',
        'set imap_check_subscribed = no',
        'set sort = mailbox-order',
        'set mark_old = no',
        'set move = no',
        'set header_cache = ""',
        'set message_cachedir = ""',
        'set confirmappend = no',
        'set wait_key = no',
        'set pager_stop = yes',
        'set charset = "utf-8"',
        `set folder = "${url}"`,
        'set spoolfile = "+INBOX"',
        'set index_format = "%4C %-20.20F %s"',
        'ignore *',
        'unignore from: to: subject: date:',
        '',
      ].join('\n'));
      await tmux(['-f', '/dev/null', 'new-session', '-d', '-s', session, '-x', '200', '-y', '50',
        `env HOME=${tmp.path} TERM=xterm LANG=C.UTF-8 mutt -n -F ${rc} -f ${url}INBOX`]);
    };

    test('imaps: the index lists every subject, and a message opens in the pager', async () => {
      await startMutt('mutt', `imaps://${t.user}@127.0.0.1:${t.tlsPort}/`);
      await waitScreen('all subjects', (s) => INBOX.every((m) => s.includes(subjectOf(m).slice(0, 40))));
      const unique = INBOX.filter((m) => INBOX.filter((o) => subjectOf(o) === subjectOf(m)).length === 1);
      const target = unique.find((m) => bodyLine(m) !== '') ?? unique[0]!;
      const subject = subjectOf(target);
      // Search for the subject, open the message.
      await tmux(['send-keys', '-t', 'mutt', '/']);
      await waitScreen('the search prompt', (s) => /Search for:/.test(s));
      await tmux(['send-keys', '-t', 'mutt', '-l', `~s "${subject.slice(0, 30).replace(/["\\~^$.*+?()[\]{}|]/g, '.')}"`]);
      await tmux(['send-keys', '-t', 'mutt', 'Enter']);
      await sleep(300);
      await tmux(['send-keys', '-t', 'mutt', 'Enter']);
      const pager = await waitScreen(`the pager with Subject: ${subject}`, (s) => s.includes(`Subject: ${subject.slice(0, 40)}`));
      const line = bodyLine(target);
      if (line) assert.ok(pager.includes(line.slice(0, 40)) || (await screen()).includes(line.slice(0, 40)), `pager shows body line "${line}":\n${pager}`);
    });

    test('imap with STARTTLS: the index lists the subjects', async () => {
      await startMutt('mutt2', `imap://${t.user}@127.0.0.1:${t.port}/`);
      const deadline = Date.now() + 20_000;
      let s = '';
      while (Date.now() < deadline) {
        s = (await tmux(['capture-pane', '-p', '-t', 'mutt2'])).toString();
        if (INBOX.every((m) => s.includes(subjectOf(m).slice(0, 40)))) break;
        await sleep(200);
      }
      for (const m of INBOX) assert.ok(s.includes(subjectOf(m).slice(0, 40)), `index shows "${subjectOf(m)}":\n${s}`);
    });
  });
}
