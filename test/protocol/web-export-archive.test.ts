// Exports of a whole archive or one folder from the browser (issue 17 "Export from a search or a
// selection"), and of a search narrowed to one archive: the button is shown only to those core/export
// lets export that archive; the POST needs a live session and the CSRF token, runs as the signed-in user
// (another user's archive refused with one answer whether it exists or not, preview blocking honoured),
// and the file holds exactly the selected messages.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord } from '../../core/audit/types.ts';
import { mail, startWebServer, type WebClient, type WebResponse, type WebTestServer } from './web-client.ts';

const BOB_SECRET = 'bob-only-walrus-7731';

/** Follow an export's page until it has ended; the final page. */
async function finished(c: WebClient, started: WebResponse): Promise<{ page: WebResponse; id: string }> {
  assert.equal(started.status, 303, started.text.slice(0, 500));
  const view = started.headers.get('location') ?? '';
  assert.match(view, /^\/exports\/view\?id=[0-9a-f]{16}$/);
  let page = await c.get(view);
  for (let i = 0; i < 200 && /refreshes itself/.test(page.text); i++) {
    await new Promise((r) => setTimeout(r, 100));
    page = await c.get(view);
  }
  assert.match(page.text, /Status: <strong>finished<\/strong>/, page.text.slice(0, 800));
  return { page, id: view.split('=')[1] as string };
}

/** Subjects in an mbox export, in file order. */
function subjects(mbox: Buffer): string[] {
  return [...mbox.toString('utf8').matchAll(/^Subject: (.*)\r?$/gm)].map((m) => (m[1] as string).trim()).sort();
}

describe('web access: export a whole archive or a folder', () => {
  let s: WebTestServer;
  const signedIn = async (name: string): Promise<WebClient> => {
    const c = s.client();
    assert.equal((await c.signIn(name)).status, 303, name);
    return c;
  };
  const audit = async (): Promise<AuditRecord[]> => {
    const out: AuditRecord[] = [];
    for await (const r of s.running.app.service('audit').list()) out.push(r);
    return out;
  };

  before(async () => {
    s = await startWebServer([
      { name: 'alice', addresses: ['alice@example.com'], privileges: ['export'] },
      { name: 'bob', addresses: ['bob@example.com'], privileges: ['export'] },
      { name: 'carol', addresses: ['carol@example.net'], privileges: ['auditor', 'export'] },
      { name: 'dave', addresses: ['dave@example.com'], privileges: ['admin', 'export'] },
      { name: 'erin', addresses: ['erin@example.com'] },
    ], { configure: (c) => { c.compliance.previewBlocking = true; } });
    await s.file('alice', 'Inbox', mail({ from: 'bob@example.com', to: 'alice@example.com', subject: 'Alice inbox one', body: 'budget figures' }));
    await s.file('alice', 'Inbox', mail({ from: 'carol@example.net', to: 'alice@example.com', subject: 'Alice inbox two', body: 'budget review' }));
    await s.file('alice', 'Sent', mail({ from: 'alice@example.com', to: 'bob@example.com', subject: 'Alice sent one', body: 'budget reply' }));
    await s.file('bob', 'Inbox', mail({ from: 'eve@example.org', to: 'bob@example.com', subject: 'Bob private', body: `${BOB_SECRET} budget` }));
    await s.file('bob', 'Projects/2026', mail({ from: 'eve@example.org', to: 'bob@example.com', subject: 'Bob project', body: `${BOB_SECRET} plan` }));
    await s.file('erin', 'Inbox', mail({ from: 'x@example.org', to: 'erin@example.com', subject: 'Erin note', body: 'hello' }));
    await s.indexed();
  });
  after(async () => {
    await s.stop();
  });

  it('exports one\'s own whole archive and one folder of it, each with exactly its messages', async () => {
    const alice = await signedIn('alice');
    const archives = await alice.get('/archives');
    assert.match(archives.text, /<form class="inline export" id="export" method="post" action="\/exports">/);
    assert.match(archives.text, /name="user" value="alice"/);
    assert.match(archives.text, /Export the whole archive as/);
    const whole = await finished(alice, await alice.post('/exports', { user: 'alice', format: 'mbox' }));
    assert.match(whole.page.text, /Export of archive of alice</);
    assert.match(whole.page.text, /3 exported of 3 selected/);
    const file = await alice.get(`/exports/file?id=${whole.id}`);
    assert.equal(file.status, 200);
    assert.deepEqual(subjects(file.bytes), ['Alice inbox one', 'Alice inbox two', 'Alice sent one']);

    const folderPage = await alice.get('/folder?user=alice&folder=Sent');
    assert.equal(folderPage.status, 200);
    assert.match(folderPage.text, /name="folder" value="Sent"/);
    assert.match(folderPage.text, /Export this folder as/);
    const sent = await finished(alice, await alice.post('/exports', { user: 'alice', folder: 'Sent', format: 'mbox' }));
    assert.match(sent.page.text, /Export of archive of alice \/ Sent</);
    assert.match(sent.page.text, /1 exported of 1 selected/);
    assert.deepEqual(subjects((await alice.get(`/exports/file?id=${sent.id}`)).bytes), ['Alice sent one']);
    const list = await alice.get('/exports');
    assert.match(list.text, /archive of alice \/ Sent/);

    const records = await audit();
    assert.ok(records.some((r) => r.action === 'export.request' && r.actor === 'alice' && r.outcome === 'success' && /alice/.test(r.target)));
    // A folder she does not have is a clear 404, not an empty export.
    const missing = await alice.post('/exports', { user: 'alice', folder: 'Nope', format: 'mbox' });
    assert.equal(missing.status, 404);
    assert.match(missing.text, /no folder &quot;Nope&quot;/);
  });

  it('needs a live session and the CSRF token, and refuses a POST from another site', async () => {
    const alice = await signedIn('alice');
    await alice.get('/archives');
    const before = (await alice.get('/exports')).text.match(/\/exports\/view\?id=/g)?.length ?? 0;
    await alice.get('/archives');
    const noToken = await alice.request('POST', '/exports', { user: 'alice', format: 'mbox' });
    assert.equal(noToken.status, 403);
    const badToken = await alice.request('POST', '/exports', { _csrf: 'A'.repeat(43), user: 'alice', format: 'mbox' });
    assert.equal(badToken.status, 403);
    await alice.get('/archives');
    const crossSite = await alice.post('/exports', { user: 'alice', format: 'mbox' }, { 'sec-fetch-site': 'cross-site' });
    assert.equal(crossSite.status, 403);
    await alice.get('/archives');
    const foreign = await alice.post('/exports', { user: 'alice', format: 'mbox' }, { origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    const after = (await alice.get('/exports')).text.match(/\/exports\/view\?id=/g)?.length ?? 0;
    assert.equal(after, before, 'no export was started');
    // Without a session: the "session ended" page, nothing started.
    const stranger = s.client();
    const r = await stranger.request('POST', '/exports', { _csrf: 'x', user: 'alice', format: 'mbox' });
    assert.equal(r.status, 401);
    assert.match(r.text, /Your session has ended/);
    const anonymousPage = await stranger.get('/archive?user=alice');
    assert.equal(anonymousPage.status, 303);
    assert.match(anonymousPage.headers.get('location') ?? '', /^\/signin\?next=/);
  });

  it('refuses another user\'s archive or folder with one answer, whether it exists or not', async () => {
    const alice = await signedIn('alice');
    await alice.get('/archives');
    for (const form of [{ user: 'bob' }, { user: 'bob', folder: 'Inbox' }, { user: 'bob', folder: 'Projects/2026' }, { user: 'nobody-here' }, { user: 'nobody-here', folder: 'Inbox' }]) {
      const r = await alice.post('/exports', { ...form, format: 'mbox' });
      assert.equal(r.status, 403, JSON.stringify(form));
      assert.match(r.text, /may export only their own archive/);
      assert.ok(!r.bytes.includes(BOB_SECRET));
      assert.equal(r.headers.get('location'), null);
    }
    assert.doesNotMatch((await alice.get('/exports')).text, /bob|nobody-here/);
    const denied = (await audit()).filter((r) => r.action === 'export.request' && r.actor === 'alice' && r.outcome === 'denied');
    assert.ok(denied.length >= 5, `denied exports are audited: ${denied.length}`);
    // Bad input is refused before anything runs.
    for (const form of [{ user: 'alice', format: 'tar' }, { user: 'a\u0001b', format: 'mbox' }, { format: 'mbox' }]) {
      const r = await alice.post('/exports', form);
      assert.equal(r.status, 400, JSON.stringify(form));
    }
  });

  it('shows no export button without the export privilege, and refuses the POST', async () => {
    const erin = await signedIn('erin');
    const archives = await erin.get('/archives');
    assert.equal(archives.status, 200);
    assert.match(archives.text, /Erin|Inbox/);
    assert.doesNotMatch(archives.text, /action="\/exports"/);
    assert.doesNotMatch((await erin.get('/folder?user=erin&folder=Inbox')).text, /action="\/exports"/);
    const r = await erin.post('/exports', { user: 'erin', format: 'mbox' });
    assert.equal(r.status, 403);
    assert.match(r.text, /needs the &quot;export&quot; privilege/);
  });

  it('lets an auditor export any archive or folder; an administrator under preview blocking only his own', async () => {
    const carol = await signedIn('carol');
    const bobArchive = await carol.get('/archive?user=bob');
    assert.match(bobArchive.text, /name="user" value="bob"/);
    const bobFolder = await carol.get('/folder?user=bob&folder=Projects%2F2026');
    assert.match(bobFolder.text, /name="folder" value="Projects\/2026"/);
    const project = await finished(carol, await carol.post('/exports', { user: 'bob', folder: 'Projects/2026', format: 'zip' }));
    assert.match(project.page.text, /1 exported of 1 selected/);
    const zip = await carol.get(`/exports/file?id=${project.id}`);
    assert.equal(zip.bytes.subarray(0, 4).toString('latin1'), 'PK\u0003\u0004');
    assert.ok((await audit()).some((r) => r.action === 'export.request' && r.actor === 'carol' && r.outcome === 'success' && /bob/.test(r.target)));

    const dave = await signedIn('dave');
    const seen = await dave.get('/archive?user=bob');
    assert.equal(seen.status, 200);
    assert.doesNotMatch(seen.text, /action="\/exports"/, 'no button for a blocked archive');
    assert.doesNotMatch((await dave.get('/folder?user=bob&folder=Inbox')).text, /action="\/exports"/);
    const refused = await dave.post('/exports', { user: 'bob', format: 'mbox' });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /Preview blocking is on/);
    assert.ok(!refused.bytes.includes(BOB_SECRET));
    await dave.get('/archives');
    const ownEmpty = await dave.post('/exports', { user: 'dave', format: 'mbox' });
    assert.equal(ownEmpty.status, 303, 'his own archive (empty here) he may export');
  });

  it('exports only the messages picked in a result or folder list, within what the user may export', async () => {
    const alice = await signedIn('alice');
    const results = await alice.get('/search?q=budget');
    const boxes = [...results.text.matchAll(/<input type="checkbox" name="pick" value="([^"]+)" form="export"/g)].map((m) => m[1] as string);
    assert.deepEqual(boxes.sort(), ['1:alice:Inbox', '1:alice:Sent', '2:alice:Inbox']);
    assert.match(results.text, /<form class="inline export" id="export"[^]*name="picked" value="1">Export selected<\/button>/);
    const picked = await finished(alice, await alice.post('/exports', { query: 'budget', picked: '1', pick: '2:alice:Inbox', format: 'mbox' }));
    assert.match(picked.page.text, /Export of 1 selected message</);
    assert.deepEqual(subjects((await alice.get(`/exports/file?id=${picked.id}`)).bytes), ['Alice inbox two']);
    // Several picks in one form (the folder page's boxes), the same one twice counted once.
    const folder = await alice.get('/folder?user=alice&folder=Inbox');
    assert.match(folder.text, /value="1:alice:Inbox" form="export"/);
    const two = await finished(alice, await alice.post('/exports', new URLSearchParams([['user', 'alice'], ['folder', 'Inbox'], ['picked', '1'], ['format', 'mbox'],
      ['pick', '1:alice:Inbox'], ['pick', '2:alice:Inbox'], ['pick', '1:alice:Inbox']])));
    assert.match(two.page.text, /2 exported of 2 selected/);
    assert.deepEqual(subjects((await alice.get(`/exports/file?id=${two.id}`)).bytes), ['Alice inbox one', 'Alice inbox two']);

    // Bob's message by any pick: one answer, nothing exported; bad picks are refused before anything runs.
    await alice.get('/archives');
    for (const pick of ['1:bob:Inbox', '1:bob:Projects/2026', '1:nobody-here:Inbox']) {
      const r = await alice.post('/exports', { picked: '1', pick, format: 'mbox' });
      assert.equal(r.status, 403, pick);
      assert.match(r.text, /may export only their own archive/);
      assert.ok(!r.bytes.includes(BOB_SECRET));
    }
    assert.equal((await alice.post('/exports', { picked: '1', pick: '99:alice:Inbox', format: 'mbox' })).status, 404);
    for (const pick of ['', 'x:alice:Inbox', '0:alice:Inbox', '1:Alice:Inbox', '1:alice:', '1:alice:In\u0001box']) {
      const r = await alice.post('/exports', { picked: '1', pick, format: 'mbox' });
      assert.equal(r.status, 400, JSON.stringify(pick));
    }
    assert.equal((await alice.post('/exports', { picked: '1', query: 'budget', format: 'mbox' })).status, 400, 'no boxes checked');

    // An administrator under preview blocking gets no box for others' mail and cannot pick it.
    const dave = await signedIn('dave');
    const blocked = await dave.get('/search?q=budget');
    assert.match(blocked.text, /Bob private/);
    assert.doesNotMatch(blocked.text, /name="pick"/);
    const refused = await dave.post('/exports', { picked: '1', pick: '1:bob:Inbox', format: 'mbox' });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /Preview blocking is on/);
    // An auditor picks across archives.
    const carol = await signedIn('carol');
    await carol.get('/search?q=budget');
    const acrossDone = await finished(carol, await carol.post('/exports', new URLSearchParams([['picked', '1'], ['format', 'mbox'], ['pick', '1:alice:Sent'], ['pick', '1:bob:Inbox']])));
    assert.deepEqual(subjects((await carol.get(`/exports/file?id=${acrossDone.id}`)).bytes), ['Alice sent one', 'Bob private']);
    assert.ok((await audit()).some((r) => r.action === 'export.request' && r.actor === 'carol' && /^2 picked messages \(alice\/Sent\/1, bob\/Inbox\/1\)$/.test(r.target)));
  });

  it('exports a search narrowed to one archive with only that archive\'s hits', async () => {
    const carol = await signedIn('carol');
    const everyone = await carol.get('/search?q=budget');
    assert.match(everyone.text, /4 messages found/);
    const narrowed = await carol.get('/search?q=budget&user=alice');
    assert.match(narrowed.text, /3 messages found/);
    assert.match(narrowed.text, /name="query" value="user:&quot;alice&quot; \(budget\)"/);
    const done = await finished(carol, await carol.post('/exports', { query: 'user:"alice" (budget)', format: 'mbox' }));
    assert.match(done.page.text, /3 exported of 3 selected/);
    const mbox = (await carol.get(`/exports/file?id=${done.id}`)).bytes;
    assert.deepEqual(subjects(mbox), ['Alice inbox one', 'Alice inbox two', 'Alice sent one']);
    assert.ok(!mbox.includes(BOB_SECRET));
  });
});
