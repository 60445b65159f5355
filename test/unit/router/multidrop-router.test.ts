// Attribution rules: which users' folders a message lands in, from the journal envelope, the SMTP
// envelope or header sources; address comparison rules; unknown-address policies.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvArchiveStore } from '../../../core/storage/kv-archive.ts';
import { RocksEngine } from '../../../core/storage/rocksdb-engine.ts';
import { HookRegistry } from '../../../core/app/hooks.ts';
import { App } from '../../../core/app/app.ts';
import { createMemoryLogger } from '../../../core/log.ts';
import { createMetrics } from '../../../core/metrics.ts';
import { defaultConfig, type Config } from '../../../core/config/schema.ts';
import multidropRouter from '../../../core/router/multidrop-router.ts';
import { parseHeaderBlock, summarize } from '../../../core/mime/headers.ts';
import type { JournalInfo, MessageContext, Route } from '../../../core/app/hook-types.ts';

let dir: string;
let archive: KvArchiveStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-router-'));
  archive = new KvArchiveStore(new RocksEngine(join(dir, 'archive')));
  await archive.open();
  await archive.addUser({ name: 'alice', addresses: ['alice@example.com'] });
  await archive.addUser({ name: 'bob', addresses: ['Bob@example.com', 'robert@example.com'] });
  await archive.addUser({ name: 'sales', addresses: ['sales@example.com'] });
  await archive.addUser({ name: 'owner', addresses: [], domains: ['owned.example'] });
});
afterEach(async () => {
  await archive.close();
  rmSync(dir, { recursive: true, force: true });
});

async function route(ctx: Partial<MessageContext> & { headersText?: string }, change: (r: Config['routing']) => void = () => undefined): Promise<string[]> {
  const routing = defaultConfig().routing;
  change(routing);
  const { logger } = createMemoryLogger();
  const hooks = new HookRegistry(logger, 5000);
  const app = new App(logger, hooks);
  app.decorate('archive', archive);
  app.decorate('metrics', createMetrics());
  await app.register(multidropRouter, routing);
  const headers = parseHeaderBlock(Buffer.from((ctx.headersText ?? 'Subject: x\r\n') + '\r\nbody\r\n'));
  const context: MessageContext = {
    intakeId: 'i1', envelope: { mailFrom: '', rcptTo: [] }, session: { listener: 'smtp', remoteAddress: '127.0.0.1', helo: 'h', user: null },
    receivedAt: '2026-01-01T00:00:00.000Z', size: 10, sha256: '0', headers, summary: summarize(headers), journal: null, assign: null, analysis: {}, open: () => Readable.from([Buffer.alloc(0)]), ...ctx,
  };
  const routes = (await hooks.collect('route', { context })).flat() as Route[];
  return [...new Set(routes.map((r) => `${r.user}/${r.folder}`))].sort();
}

function journal(envelope: Partial<JournalInfo['envelope']>): JournalInfo {
  return {
    kind: 'exchange', role: 'original', ndrWrapped: false, problems: [], wrapper: { messageId: null, from: 'journal@example.com', date: null },
    envelope: { style: 'typed', sender: null, onBehalfOf: null, subject: null, messageId: null, recipients: [], fields: [], ...envelope },
  };
}

test('SMTP envelope: sender gets Sent, each known recipient Inbox; unknown ones are ignored by default', async () => {
  assert.deepEqual(await route({ envelope: { mailFrom: 'alice@example.com', rcptTo: ['bob@EXAMPLE.com', 'x@else.org'] } }), ['alice/Sent', 'bob/Inbox']);
});

test('an owner known at capture adds to normal routing, or replaces it when exclusive', async () => {
  const envelope = { mailFrom: 'x@else.org', rcptTo: ['bob@example.com'] };
  assert.deepEqual(await route({ envelope, assign: { user: 'alice', direction: 'sent', reason: 'smtp auth alice' } }), ['alice/Sent', 'bob/Inbox']);
  assert.deepEqual(await route({ envelope, assign: { user: 'alice', direction: 'received', reason: 'pop3 login alice' } }), ['alice/Inbox', 'bob/Inbox']);
  assert.deepEqual(await route({ envelope, assign: { user: 'alice', direction: 'received', folder: 'Projects/2024', exclusive: true, reason: 'import --user alice' } }), ['alice/Projects/2024']);
  assert.deepEqual(await route({ envelope: { mailFrom: '', rcptTo: ['bob@example.com'] }, assign: { user: 'bob', direction: 'received', reason: 'pop3 login bob' } }), ['bob/Inbox'], 'no duplicate route');
});

test('a user who is both sender and recipient gets both folders', async () => {
  assert.deepEqual(await route({ envelope: { mailFrom: 'alice@example.com', rcptTo: ['alice@example.com'] } }), ['alice/Inbox', 'alice/Sent']);
});

test('journal envelope decides, including Bcc, DL members and the list owner; the wrapper headers never count', async () => {
  const routes = await route({
    envelope: { mailFrom: 'journal-sender@example.com', rcptTo: ['journal@example.com'] },
    headersText: 'From: alice@example.com\r\nTo: bob@example.com\r\n',
    journal: journal({
      sender: 'someone@else.org',
      recipients: [
        { address: 'robert@example.com', field: 'bcc', expandedFrom: null, forwardedFrom: null },
        { address: 'member@else.org', field: 'to', expandedFrom: 'sales@example.com', forwardedFrom: null },
      ],
    }),
  }, (r) => { r.journalAddresses = ['journal@example.com']; });
  assert.deepEqual(routes, ['bob/Inbox', 'sales/Inbox']);
});

test('journal On-Behalf-Of: the principal gets Sent too; Forwarded: the original recipient gets it', async () => {
  const routes = await route({
    journal: journal({
      sender: 'bob@example.com', onBehalfOf: 'alice@example.com',
      recipients: [{ address: 'x@else.org', field: 'to', expandedFrom: null, forwardedFrom: 'sales@example.com' }],
    }),
  });
  assert.deepEqual(routes, ['alice/Sent', 'bob/Sent', 'sales/Inbox']);
});

test('RCPT TO that is only a journal address: header sources decide (X-Original-To before Delivered-To)', async () => {
  const routes = await route({
    envelope: { mailFrom: 'x@else.org', rcptTo: ['journal@example.com'] },
    headersText: 'Delivered-To: bob@example.com\r\nX-Original-To: alice@example.com\r\nTo: sales@example.com\r\n',
  }, (r) => { r.journalAddresses = ['journal@example.com']; });
  assert.deepEqual(routes, ['alice/Inbox']);
});

test('To/Cc/From attribute a message without an envelope by default; without the guess source it matches no one', async () => {
  const headersText = 'From: alice@example.com\r\nTo: bob@example.com\r\n';
  assert.deepEqual(await route({ headersText }), ['alice/Sent', 'bob/Inbox']);
  assert.deepEqual(await route({ headersText }, (r) => { r.sources = r.sources.filter((s) => s !== 'to-cc-from-guess'); }), []);
});

test('defaults: an always_bcc copy (RCPT TO only the journal address, no delivery headers) is attributed from To/Cc/From', async () => {
  const routes = await route({
    envelope: { mailFrom: 'alice@example.com', rcptTo: ['journal@journal.postern.invalid'] },
    headersText: 'From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nCc: sales@example.com\r\n',
  }, (r) => { r.journalAddresses = ['journal@journal.postern.invalid']; });
  assert.deepEqual(routes, ['alice/Sent', 'bob/Inbox', 'sales/Inbox']);
});

test('defaults: an imported file (no SMTP envelope) is attributed from To/Cc/From', async () => {
  const session = { listener: 'import', remoteAddress: '', helo: '', user: null };
  assert.deepEqual(await route({ session, headersText: 'From: bob@example.com\r\nTo: alice@example.com\r\n' }), ['alice/Inbox', 'bob/Sent']);
});

test('defaults: journal reports, the SMTP envelope and delivery headers keep precedence over To/Cc/From', async () => {
  const headersText = 'From: alice@example.com\r\nTo: sales@example.com\r\n';
  assert.deepEqual(await route({ headersText, envelope: { mailFrom: 'x@else.org', rcptTo: ['bob@example.com'] } }), ['bob/Inbox'], 'SMTP envelope');
  assert.deepEqual(await route({ headersText: `Delivered-To: bob@example.com\r\n${headersText}` }), ['bob/Inbox'], 'Delivered-To');
  assert.deepEqual(await route({ headersText, journal: journal({ recipients: [{ address: 'bob@example.com', field: 'bcc', expandedFrom: null, forwardedFrom: null }] }) }), ['bob/Inbox'], 'journal report');
  assert.deepEqual(await route({ headersText, journal: journal({}) }), [], 'a journal report naming no one is not guessed from the original');
});

test('sub-addresses, owned domains and local-part case rules', async () => {
  assert.deepEqual(await route({ envelope: { mailFrom: '', rcptTo: ['alice+news@example.com', 'anyone@Owned.Example'] } }), ['alice/Inbox', 'owner/Inbox']);
  assert.deepEqual(await route({ envelope: { mailFrom: '', rcptTo: ['alice+news@example.com'] } }, (r) => { r.subaddressSeparator = ''; }), []);
  assert.deepEqual(await route({ envelope: { mailFrom: '', rcptTo: ['bob@example.com'] } }, (r) => { r.localPartCase = 'sensitive'; }), []);
  assert.deepEqual(await route({ envelope: { mailFrom: '', rcptTo: ['Bob@example.com'] } }, (r) => { r.localPartCase = 'sensitive'; }), ['bob/Inbox']);
});

test('unknown addresses: unassigned files a copy into the unmatched archive; create makes users in owned domains', async () => {
  assert.deepEqual(await route({ envelope: { mailFrom: '', rcptTo: ['alice@example.com', 'nobody@else.org'] } }, (r) => { r.unknownAddresses = 'unassigned'; }), ['_unrouted/Inbox', 'alice/Inbox']);
  const created = await route({ envelope: { mailFrom: 'new.person@corp.example', rcptTo: ['x@else.org'] } }, (r) => {
    r.unknownAddresses = 'create';
    r.autoCreateDomains = ['corp.example'];
  });
  assert.deepEqual(created, ['new.person/Sent']);
  assert.deepEqual((await archive.getUser('new.person'))?.addresses, ['new.person@corp.example']);
});

test('journal addresses are folded once per configured list and a changed list is honoured at once', async () => {
  const { participantsOf } = await import('../../../core/router/participants.ts');
  const rules = { ...defaultConfig().routing, journalAddresses: ['Journal@Example.com'] };
  const headers = parseHeaderBlock(Buffer.from('Subject: x\r\n\r\n'));
  const context: MessageContext = {
    intakeId: 'i1', envelope: { mailFrom: 'carol@else.org', rcptTo: ['journal@example.COM', 'alice@example.com'] },
    session: { listener: 'smtp', remoteAddress: '127.0.0.1', helo: 'h', user: null }, receivedAt: '2026-01-01T00:00:00.000Z', size: 10,
    sha256: '0', headers, summary: summarize(headers), journal: null, assign: null, analysis: {}, open: () => Readable.from([Buffer.alloc(0)]),
  };
  const recipients = (): string[] => participantsOf(context, rules).participants.filter((p) => p.role === 'recipient').map((p) => p.address);
  assert.deepEqual(recipients(), ['alice@example.com'], 'the journal address is never a participant');
  assert.deepEqual(recipients(), ['alice@example.com'], 'same answer from the folded list');
  rules.journalAddresses[0] = 'alice@EXAMPLE.com'; // changed in place: same array, other entry
  assert.deepEqual(recipients(), ['journal@example.COM']);
  rules.journalAddresses.push('journal@example.com');
  assert.deepEqual(recipients(), [], 'only journal addresses left: nothing from the envelope');
  rules.journalAddresses = [];
  assert.deepEqual(recipients(), ['journal@example.COM', 'alice@example.com']);
});
