// Messages archived before the imap plugin was enabled carry no stored IMAP data: the server computes
// ENVELOPE/BODYSTRUCTURE from the blob on first access (and caches them) and serves them like any
// other. Also checks that the plugin's metrics are exported.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../helpers/test-server.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { message } from './imap-client.ts';

describe('IMAP over messages archived before the plugin', () => {
  it('computes the IMAP data from the blob on first access', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imap-legacy-'));
    try {
      const before = await startTestServer(() => undefined, dir);
      await before.archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
      const smtp = await SmtpClient.open(before.smtpPort);
      await smtp.read();
      await smtp.cmd('EHLO test');
      await smtp.cmd('MAIL FROM:<bob@example.com>');
      await smtp.cmd('RCPT TO:<alice@example.com>');
      await smtp.cmd('DATA');
      const raw = message({ from: 'Bob <bob@example.com>', to: 'alice@example.com', subject: 'Old mail', body: 'archived long ago' });
      assert.equal((await smtp.cmd(raw + '\r\n.')).code, 250);
      await before.settle();
      const entry = (await before.archive.listEntries('alice', 'Inbox'))[0];
      const stored = await before.archive.getMessage(entry?.messageId ?? '');
      assert.equal(stored?.attributes?.imap, undefined, 'no IMAP data was stored without the plugin');
      await before.stop();

      const after = await startTestServer((c) => {
        c.plugins.push({ name: 'imap', config: { port: 0, tlsPort: null, allowPlaintext: true } });
      }, dir);
      try {
        const { hashPassword } = await import('../../core/smtp/password.ts');
        await after.archive.updateUser('alice', { passwordHash: await hashPassword('legacy password'), imapAccess: true });
        const port = after.running.app.service('imap').ports().port ?? 0;
        assert.equal(after.running.app.service('imap').ports().tlsPort, null, 'tlsPort null turns the TLS listener off');
        const { ImapClient } = await import('./imap-client.ts');
        const c = await ImapClient.open(port);
        await c.readUnit();
        await c.cmd('LOGIN alice "legacy password"');
        await c.cmd('SELECT INBOX');
        for (let i = 0; i < 2; i++) {
          const r = await c.cmd('FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[TEXT])');
          assert.match(r.lines[0] ?? '', /ENVELOPE \("Mon, 02 Mar 2026 10:00:00 \+0000" "Old mail" \(\("Bob" NIL "bob" "example.com"\)\)/);
          assert.match(r.lines[0] ?? '', /BODYSTRUCTURE \("text" "plain" \("charset" "utf-8"\)/);
          assert.match(r.lines[0] ?? '', /BODY\[TEXT\] \{\d+\}\r\narchived long ago/);
        }
        assert.deepEqual((await c.cmd('SEARCH SUBJECT "old mail"')).lines, ['* SEARCH 1']);
        c.close();
        const metrics = await (await fetch(`http://127.0.0.1:${after.adminPort}/metrics`)).text();
        assert.match(metrics, /postern_imap_commands_total\{command="FETCH",status="OK"\} 2/);
        assert.match(metrics, /postern_imap_logins_total\{outcome="ok"\} 1/);
        assert.match(metrics, /postern_connections_total\{listener="imap"\} 1/);
        assert.match(metrics, /postern_imap_fetched_bytes_total \d+/);
      } finally {
        await after.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
