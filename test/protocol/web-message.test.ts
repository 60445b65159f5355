// The web message view on a live server: a hostile HTML mail (script, event handlers, remote images,
// srcset, CSS url() in style attributes and <style>, <link>, <iframe>, <form>, javascript: links) is
// rendered sanitised in a sandboxed frame under its own CSP with no remote URL left; an inline cid:
// image becomes a data: URL; attachments are listed and downloaded as decoded bytes with a safe file
// name; the original .eml download is byte-identical (also for bare-LF and 8-bit mail); search shows
// the attachment marker and pages with nextCursor; the folder page pages by UID; every read is audited
// as a web access when recordMessageAccess is on; an empty archive and a failed search have clear pages.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AuditRecord } from '../../core/audit/types.ts';
import { mail, startWebServer, type WebClient, type WebTestServer } from './web-client.ts';
import { HOSTILE, PDF } from './web-fixtures.ts';


async function auditRecords(s: WebTestServer): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of s.running.app.service('audit').list()) out.push(r);
  return out;
}

describe('web access: message view, sanitised HTML, downloads, search and folders', () => {
  let s: WebTestServer;
  let c: WebClient;
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  before(async () => {
    s = await startWebServer([
      { name: 'alice', addresses: ['alice@example.com'] },
      { name: 'empty', addresses: ['empty@example.com'] },
    ], { web: { pageSize: 5 }, configure: (cfg) => { cfg.audit.recordMessageAccess = true; } });
    await s.file('alice', 'Inbox', HOSTILE);
    // Bare LF line ends and 8-bit bytes: stored and downloaded exactly as they arrived.
    await s.file('alice', 'Inbox', Buffer.from('From: bob@example.com\nTo: alice@example.com\nSubject: Bare LF\nDate: Wed, 04 Mar 2026 10:00:00 +0000\n\nCaf\xe9 in Latin-1, no final newline', 'latin1'));
    for (let i = 1; i <= 7; i++) await s.file('alice', 'Archive/2025', mail({ from: 'carol@example.net', to: 'alice@example.com', subject: `Report number ${i}`, date: `Thu, 0${i} Jan 2025 10:00:00 +0000`, body: `quarterly figures ${i}` }));
    await s.indexed();
    c = s.client();
    assert.equal((await c.signIn('alice')).status, 303);
  });
  after(async () => {
    await s.stop();
  });

  it('renders the hostile HTML body sanitised, in a sandboxed frame without scripts, with no remote URL left', async () => {
    const view = await c.get('/message?user=alice&folder=Inbox&uid=1');
    assert.equal(view.status, 200);
    const frame = /<iframe[^>]*>/.exec(view.text)?.[0] ?? '';
    assert.match(frame, /sandbox="allow-popups allow-popups-to-escape-sandbox"/);
    assert.doesNotMatch(frame, /allow-scripts|allow-same-origin/);
    assert.match(frame, /src="\/message\/html\?user=alice&amp;folder=Inbox&amp;uid=1"/);
    assert.doesNotMatch(view.text, /tracker\.evil\.example/, 'the page itself names no remote resource');
    assert.match(view.text, /Plain version: grüße/);

    const r = await c.get('/message/html?user=alice&folder=Inbox&uid=1');
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /img-src data:/);
    assert.match(csp, /style-src 'unsafe-inline'/);
    assert.match(csp, /sandbox allow-popups/);
    assert.doesNotMatch(csp, /script-src/);
    const doc = r.text;
    assert.match(doc, /<h1>Grüße<\/h1><p>Visible text of the newsletter.<\/p>/);
    assert.match(doc, /Red text/);
    for (const bad of [/<script/i, /onload|onerror|onclick/i, /javascript:/i, /<iframe|<form|<input|<object|<svg|<video|<link|<base|<meta http-equiv/i, /srcset/i, /url\(/i, /background=/i, /tracker\.evil\.example/]) {
      assert.doesNotMatch(doc, bad, `no ${bad}`);
    }
    assert.match(doc, /<div style="color: ?red">Red text<\/div>/);
    assert.match(doc, /<img alt="inline logo" src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    assert.match(doc, /<span class="blocked-image">\[image: logo\]<\/span>/);
    assert.match(doc, /<a href="https:\/\/example.org\/page" target="_blank" rel="noopener noreferrer">real link<\/a>/);
    // Every src left is a data: URL.
    for (const m of doc.matchAll(/\bsrc="([^"]*)"/g)) assert.match(m[1] as string, /^data:image\//);
  });

  it('lists attachments and downloads them as decoded bytes with a safe file name', async () => {
    const view = await c.get('/message?user=alice&folder=Inbox&uid=1');
    const links = [...view.text.matchAll(/href="(\/message\/part\?[^"]+)"[^>]*>([^<]+)</g)].map((m) => ({ href: (m[1] as string).replace(/&amp;/g, '&'), name: m[2] as string }));
    const pdf = links.find((l) => l.name.includes('Rechnung'));
    assert.ok(pdf, JSON.stringify(links));
    assert.ok(links.some((l) => l.name === 'part 5' || /inline/.test(view.text)), 'the inline image is listed too');
    const r = await c.get(pdf.href);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    const disposition = r.headers.get('content-disposition') ?? '';
    assert.match(disposition, /^attachment; filename="Rechnung M_rz___.._x.pdf"; filename\*=UTF-8''Rechnung%20M%C3%A4rz_____x\.pdf$|^attachment; filename="[^"/\\]+"; filename\*=UTF-8''[^/\\]+$/);
    assert.doesNotMatch(disposition, /\//);
    assert.equal(sha(r.bytes), sha(PDF));
    assert.match(r.headers.get('content-security-policy') ?? '', /sandbox/);
    assert.equal((await c.get('/message/part?user=alice&folder=Inbox&uid=1&part=99')).status, 404);
    assert.equal((await c.get('/message/part?user=alice&folder=Inbox&uid=1&part=x')).status, 400);
  });

  it('downloads the original .eml byte for byte, also with bare LF and 8-bit bytes', async () => {
    for (const uid of [1, 2]) {
      const entry = await s.archive.getEntry('alice', 'Inbox', uid);
      const message = await s.archive.getMessage(entry?.messageId ?? '');
      const stream = await s.archive.openBlob(message?.blobId ?? '');
      const parts: Buffer[] = [];
      for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
      const stored = Buffer.concat(parts);
      const r = await c.get(`/message/raw?user=alice&folder=Inbox&uid=${uid}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-disposition') ?? '', /^attachment; filename="alice-Inbox-\d\.eml"/);
      assert.equal(r.headers.get('content-type'), 'message/rfc822');
      assert.equal(r.bytes.length, stored.length);
      assert.ok(r.bytes.equals(stored), `uid ${uid} byte-identical`);
      assert.equal(sha(r.bytes), message?.blobId);
    }
    const plain = await c.get('/message?user=alice&folder=Inbox&uid=2');
    assert.match(plain.text, /<pre class="mail-text">Café in Latin-1, no final newline<\/pre>|<pre class="mail-text">Caf. in Latin-1/);
  });

  it('shows captures and retention of the message', async () => {
    const view = await c.get('/message?user=alice&folder=Inbox&uid=1');
    assert.match(view.text, /<h2 id="cap-title">Captures<\/h2>/);
    assert.match(view.text, /via test-import/);
    assert.match(view.text, /sender@example.org/);
    assert.match(view.text, /<dt>Deletable now<\/dt><dd>Yes<\/dd>/);
    await s.running.app.service('compliance').createHold('admin-token', { name: 'case-1', scope: { users: ['alice'] } });
    const held = await c.get('/message?user=alice&folder=Inbox&uid=1');
    assert.match(held.text, /<dt>Deletable now<\/dt><dd>No<\/dd>/);
    assert.match(held.text, /legal hold case-1/);
  });

  it('searches with an attachment marker, pages with nextCursor, and explains a failed search', async () => {
    const hit = await c.get('/search?q=' + encodeURIComponent('newsletter'));
    assert.equal(hit.status, 200);
    assert.match(hit.text, /Hostile newsletter<\/a> <span class="tag clip" title="Has attachments">attachment<\/span>/);
    const page1 = await c.get('/search?q=' + encodeURIComponent('subject:report'));
    assert.match(page1.text, /7 messages found/);
    assert.equal([...page1.text.matchAll(/Report number/g)].length, 5);
    const next = /href="(\/search\?[^"]*cursor=[^"]+)"/.exec(page1.text)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(next);
    const page2 = await c.get(next);
    assert.equal([...page2.text.matchAll(/Report number/g)].length, 2);
    assert.doesNotMatch(page2.text, /rel="next"/);
    const bad = await c.get('/search?q=' + encodeURIComponent('from:alice OR'));
    assert.equal(bad.status, 400);
    assert.match(bad.text, /The search failed: Query error at position 12: expected a term after &quot;OR&quot;/);
    const none = await c.get('/search?q=' + encodeURIComponent('zzzqqqxxx'));
    assert.match(none.text, /No messages match this search/);
  });

  it('pages a folder by UID and shows the folder tree', async () => {
    const tree = await c.get('/archives');
    assert.match(tree.text, /<span>Archive<\/span><ul class="tree"><li><a href="\/folder\?user=alice&amp;folder=Archive%2F2025">2025<\/a> <span class="n">7<\/span>/);
    const p1 = await c.get('/folder?user=alice&folder=Archive%2F2025');
    assert.equal([...p1.text.matchAll(/Report number/g)].length, 5);
    const next = /href="(\/folder\?[^"]*after=5)"/.exec(p1.text)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(next, 'a next link after UID 5');
    const p2 = await c.get(next);
    assert.match(p2.text, /Report number 6/);
    assert.match(p2.text, /Report number 7/);
    assert.equal((await c.get('/folder?user=alice&folder=Nope')).status, 404);
  });

  it('records every read as a web access in the audit log (audit.recordMessageAccess)', async () => {
    const records = (await auditRecords(s)).filter((r) => r.action.startsWith('web.'));
    const actions = new Set(records.map((r) => r.action));
    for (const a of ['web.login', 'web.view', 'web.list', 'web.download-original', 'web.download-attachment']) assert.ok(actions.has(a), `${a} in ${[...actions].join(', ')}`);
    assert.ok(records.some((r) => r.action === 'web.view' && r.target === 'alice/Inbox/1' && r.actor === 'alice'));
  });

  it('records a message page and its HTML frame as one view', async () => {
    await s.file('alice', 'Inbox', Buffer.concat([Buffer.from('X-Copy: for the one-view test\r\n'), Buffer.from(HOSTILE)]));
    const v = s.client();
    await v.signIn('alice');
    const views = async (): Promise<number> => (await auditRecords(s)).filter((r) => r.action === 'web.view' && r.target === 'alice/Inbox/3').length;
    const before = await views();
    assert.equal((await v.get('/message?user=alice&folder=Inbox&uid=3')).status, 200);
    assert.equal((await v.get('/message/html?user=alice&folder=Inbox&uid=3')).status, 200);
    assert.equal(await views(), before + 1);
  });

  it('shows a clear page for an empty archive', async () => {
    const e = s.client();
    await e.signIn('empty');
    const r = await e.get('/archives');
    assert.equal(r.status, 200);
    assert.match(r.text, /No mail has been archived for you yet/);
    const q = await e.get('/search?q=report');
    assert.match(q.text, /No messages match this search/);
  });
});

describe('web access without the search plugin', () => {
  it('says that search is not enabled and still browses folders', async () => {
    const s = await startWebServer([{ name: 'alice', addresses: ['alice@example.com'] }], { search: false });
    try {
      await s.file('alice', 'Inbox', mail({ from: 'bob@example.com', to: 'alice@example.com', subject: 'No index here' }));
      const c = s.client();
      await c.signIn('alice');
      const r = await c.get('/search?q=index');
      assert.equal(r.status, 503);
      assert.match(r.text, /Full-text search is not enabled on this server/);
      assert.match((await c.get('/folder?user=alice&folder=Inbox')).text, /No index here/);
    } finally {
      await s.stop();
    }
  });
});
