// Web access isolation on a live server, exactly as the admin API decides: a user requesting every
// route of the server's route table (checked against it, so a new route needs a probe) with another
// user's ids (archive, folder, message, HTML body, original, attachment, search scope, exports, archive
// and folder export, holds) gets 403/404 and never a byte of the other's mail, and finds nothing of it by any
// query; an auditor reads every archive (each read of another's archive audited); an administrator under
// preview blocking sees only from, to, subject and date of others' mail (body, HTML, attachments and
// original refused with 403) but all of their own; exports from a search run as the signed-in user
// within their scope, with progress and a download; the legal-hold page lists cases with counts for
// compliance officers only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord } from '../../core/audit/types.ts';
import { mail, startWebServer, type WebClient, type WebTestServer } from './web-client.ts';

const SECRET = 'merger-codeword-zebra';
const WITH_ATTACHMENT = [
  'From: eve@example.org', 'To: bob@example.com', 'Subject: Secret merger plans', 'Date: Wed, 03 Jan 2024 08:00:00 +0000',
  'Message-ID: <secret@example.org>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="B"', '',
  '--B', 'Content-Type: text/html; charset=utf-8', '', `<p>${SECRET} in the body</p>`,
  '--B', 'Content-Type: text/plain; name="plan.txt"', 'Content-Disposition: attachment; filename="plan.txt"', '', `${SECRET} attachment`, '--B--', '',
].join('\r\n');

async function auditRecords(s: WebTestServer): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of s.running.app.service('audit').list()) out.push(r);
  return out;
}

/** Every message route for one entry. */
function messageRoutes(user: string, folder: string, uid: number): string[] {
  const q = `user=${encodeURIComponent(user)}&folder=${encodeURIComponent(folder)}&uid=${uid}`;
  return [`/message?${q}`, `/message/html?${q}`, `/message/raw?${q}`, `/message/part?${q}&part=1`];
}

describe('web access isolation, auditors, preview blocking and exports', () => {
  let s: WebTestServer;
  const signedIn = async (name: string): Promise<WebClient> => {
    const c = s.client();
    assert.equal((await c.signIn(name)).status, 303, name);
    return c;
  };

  before(async () => {
    s = await startWebServer([
      { name: 'alice', addresses: ['alice@example.com'], privileges: ['export'] },
      { name: 'bob', addresses: ['bob@example.com'], privileges: ['export'] },
      { name: 'carol', addresses: ['carol@example.net'], privileges: ['auditor', 'export'] },
      { name: 'dave', addresses: ['dave@example.com'], privileges: ['admin'] },
      { name: 'cora', addresses: ['cora@example.com'], privileges: ['compliance'] },
    ], { configure: (c) => { c.compliance.previewBlocking = true; } });
    await s.file('alice', 'Inbox', mail({ from: 'bob@example.com', to: 'alice@example.com', subject: 'Lunch on Friday', body: 'Shall we meet at noon?' }));
    await s.file('bob', 'Inbox', WITH_ATTACHMENT);
    await s.file('dave', 'Inbox', mail({ from: 'ops@example.com', to: 'dave@example.com', subject: 'Admin own mail', body: 'dave reads his own body' }));
    await s.indexed();
    await s.running.app.service('compliance').createHold('admin-token', { name: 'case-bob', description: 'Bob litigation', scope: { users: ['bob'] } });
  });
  after(async () => {
    await s.stop();
  });

  it('refuses every route with another user\'s ids and shows nothing of their mail', async () => {
    // Bob's own export, whose id Alice then tries.
    const bob = await signedIn('bob');
    await bob.get('/search?q=merger');
    const bobExport = ((await bob.post('/exports', { query: 'merger', format: 'mbox' })).headers.get('location') ?? '').split('=')[1] ?? '';
    assert.match(bobExport, /^[0-9a-f]{16}$/);
    const alice = await signedIn('alice');
    const msg = (path: string): string[] => [...messageRoutes('bob', 'Inbox', 1), ...messageRoutes('bob', 'Inbox', 999)].filter((r) => r.startsWith(`${path}?`));
    // Every route of the web server, each requested with Bob's ids (must be refused) or, for pages
    // that take no ids, shown to Alice (must show nothing of Bob's). A route added without a line here fails.
    const refused: Record<string, Array<string | Record<string, string>>> = {
      'GET /archive': ['/archive?user=bob'],
      'GET /folder': ['/folder?user=bob&folder=Inbox'],
      'GET /message': msg('/message'), 'GET /message/html': msg('/message/html'), 'GET /message/raw': msg('/message/raw'), 'GET /message/part': msg('/message/part'),
      'GET /search': ['/search?q=merger&user=bob'],
      'GET /holds': ['/holds'],
      'GET /exports/view': [`/exports/view?id=${bobExport}`],
      'GET /exports/file': [`/exports/file?id=${bobExport}`],
      'POST /exports': [{ user: 'bob' }, { user: 'bob', folder: 'Inbox' }, { hold: 'case-bob' }],
    };
    const ownPages = ['GET /', 'GET /account', 'GET /archives', 'GET /exports', 'POST /signout'];
    const table = s.running.app.service('web').routes();
    assert.deepEqual([...Object.keys(refused), ...ownPages].sort(), [...table.session].sort(), 'every session route is probed');
    assert.deepEqual([...table.public].sort(), ['GET /signin', 'POST /signin'], 'public routes take no ids');
    for (const [route, probes] of Object.entries(refused)) {
      for (const probe of probes) {
        await alice.get('/archives');
        const r = typeof probe === 'string' ? await alice.get(probe) : await alice.post('/exports', { ...probe, format: 'mbox' });
        const what = `${route} ${JSON.stringify(probe)}`;
        assert.ok(r.status === 403 || r.status === 404, `${what}: ${r.status}`);
        assert.ok(!r.bytes.includes(SECRET), what);
        assert.doesNotMatch(r.text, /Secret merger plans/, what);
      }
    }
    for (const route of ownPages) {
      await alice.get('/archives');
      const r = route === 'POST /signout' ? await alice.post('/signout') : await alice.get(route.slice(4));
      assert.ok(r.status === 200 || r.status === 303, `${route}: ${r.status}`);
      assert.ok(!r.bytes.includes(SECRET), route);
      assert.doesNotMatch(r.text, /Secret merger plans|bob/, route);
    }
    assert.equal((await alice.signIn('alice')).status, 303);
    for (const q of [SECRET, 'merger', 'user:bob', 'from:eve', 'folder:Inbox']) {
      const r = await alice.get(`/search?q=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200, q);
      assert.doesNotMatch(r.text, /Secret merger plans|user=bob/, q);
    }
    const list = await alice.get('/archives');
    assert.doesNotMatch(list.text, /bob/);
    // Her own mail is hers.
    for (const path of messageRoutes('alice', 'Inbox', 1).slice(0, 3)) {
      const r = await alice.get(path);
      assert.ok(r.status === 200 || (path.includes('/html') && r.status === 404), `${path}: ${r.status}`);
    }
  });

  it('keeps exports to the one who made them and within their own archive', async () => {
    const bob = await signedIn('bob');
    await bob.get('/search?q=merger');
    const started = await bob.post('/exports', { query: 'merger', format: 'mbox' });
    assert.equal(started.status, 303);
    const view = started.headers.get('location') ?? '';
    assert.match(view, /^\/exports\/view\?id=[0-9a-f]{16}$/);
    const id = view.split('=')[1] as string;
    let page = await bob.get(view);
    for (let i = 0; i < 100 && /refreshes itself/.test(page.text); i++) {
      assert.equal(page.headers.get('refresh'), '2');
      await new Promise((r) => setTimeout(r, 100));
      page = await bob.get(view);
    }
    assert.match(page.text, /Status: <strong>finished<\/strong>/);
    assert.match(page.text, /1 exported of 1 selected/);
    const file = await bob.get(`/exports/file?id=${id}`);
    assert.equal(file.status, 200);
    assert.ok(file.bytes.includes(SECRET));
    assert.match(file.headers.get('content-disposition') ?? '', /^attachment;/);
    const alice = await signedIn('alice');
    for (const path of [view, `/exports/file?id=${id}`]) {
      const r = await alice.get(path);
      assert.equal(r.status, 404, path);
      assert.ok(!r.bytes.includes(SECRET));
    }
    // Alice's export of the same query holds only her own archive: nothing.
    await alice.get('/search?q=merger');
    const hers = await alice.post('/exports', { query: 'merger', format: 'mbox' });
    const herView = hers.headers.get('location') ?? '';
    let mine = await alice.get(herView);
    for (let i = 0; i < 100 && /refreshes itself/.test(mine.text); i++) {
      await new Promise((r) => setTimeout(r, 100));
      mine = await alice.get(herView);
    }
    assert.match(mine.text, /0 exported of 0 selected/);
    assert.doesNotMatch((await alice.get('/exports')).text, new RegExp(id));
    // Without the export privilege there is no export.
    const cora = await signedIn('cora');
    await cora.get('/holds');
    const refused = await cora.post('/exports', { hold: 'case-bob', format: 'zip' });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /needs the &quot;export&quot; privilege/);
  });

  it('lets an auditor read every archive, each read of another\'s archive audited', async () => {
    const carol = await signedIn('carol');
    const archives = await carol.get('/archives');
    for (const u of ['alice', 'bob', 'dave']) assert.match(archives.text, new RegExp(`href="/archive\\?user=${u}"`));
    const view = await carol.get('/message?user=bob&folder=Inbox&uid=1');
    assert.equal(view.status, 200);
    assert.match(view.text, /plan\.txt/);
    const html = await carol.get('/message/html?user=bob&folder=Inbox&uid=1');
    assert.ok(html.bytes.includes(SECRET));
    const raw = await carol.get('/message/raw?user=bob&folder=Inbox&uid=1');
    assert.equal(raw.status, 200);
    const found = await carol.get(`/search?q=${encodeURIComponent(SECRET)}`);
    assert.match(found.text, /Secret merger plans/);
    const records = await auditRecords(s);
    assert.ok(records.some((r) => r.action === 'web.view' && r.actor === 'carol' && r.target === 'bob/Inbox/1' && (r.details as { auditor: boolean }).auditor));
    assert.ok(records.some((r) => r.action === 'web.download-original' && r.actor === 'carol'));
    assert.ok(records.some((r) => r.action === 'search.query' && r.actor === 'carol' && (r.details as { via?: string }).via === 'web'));
    const holds = await carol.get('/holds');
    assert.equal(holds.status, 200);
    assert.match(holds.text, /case-bob/);
    // An auditor with the export privilege exports the hold's messages from the holds page.
    const started = await carol.post('/exports', { hold: 'case-bob', format: 'zip' });
    assert.equal(started.status, 303, started.text);
    const holdView = started.headers.get('location') ?? '';
    let page = await carol.get(holdView);
    for (let i = 0; i < 100 && /refreshes itself/.test(page.text); i++) {
      await new Promise((r) => setTimeout(r, 100));
      page = await carol.get(holdView);
    }
    assert.match(page.text, /Export of legal hold case-bob/);
    assert.match(page.text, /1 exported of 1 selected/);
  });

  it('shows an administrator under preview blocking only from, to, subject and date of others\' mail', async () => {
    const dave = await signedIn('dave');
    const archives = await dave.get('/archives');
    assert.match(archives.text, /Preview blocking is on/);
    const view = await dave.get('/message?user=bob&folder=Inbox&uid=1');
    assert.equal(view.status, 200);
    assert.match(view.text, /Secret merger plans/);
    assert.match(view.text, /eve@example.org/);
    assert.match(view.text, /bob@example.com/);
    assert.ok(!view.bytes.includes(SECRET));
    assert.doesNotMatch(view.text, /plan\.txt|\/message\/raw|\/message\/html|\/message\/part|Captures/);
    for (const path of messageRoutes('bob', 'Inbox', 1).slice(1)) {
      const r = await dave.get(path);
      assert.equal(r.status, 403, path);
      assert.ok(!r.bytes.includes(SECRET), path);
    }
    const search = await dave.get(`/search?q=${encodeURIComponent('merger')}`);
    assert.match(search.text, /Secret merger plans/);
    assert.doesNotMatch(search.text, /class="tag clip"/);
    // His own mail in full.
    const own = await dave.get('/message?user=dave&folder=Inbox&uid=1');
    assert.match(own.text, /dave reads his own body/);
    assert.equal((await dave.get('/message/raw?user=dave&folder=Inbox&uid=1')).status, 200);
  });

  it('lists legal holds with the number of held messages for compliance officers, with an export button for exporters', async () => {
    const cora = await signedIn('cora');
    const holds = await cora.get('/holds');
    assert.equal(holds.status, 200);
    assert.match(holds.text, /<strong>case-bob<\/strong><br><span class="meta">Bob litigation<\/span>/);
    assert.match(holds.text, /users bob<\/td>\s*<td>1<\/td>/);
    assert.match(holds.text, /exporting a hold needs the export privilege and the auditor or admin privilege/);
    assert.doesNotMatch(holds.text, /name="hold"/);
    const messageOfBob = await cora.get('/message?user=bob&folder=Inbox&uid=1');
    assert.equal(messageOfBob.status, 403, 'compliance alone reads no other archive');
  });
});
