import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseHeaderBlock, type HeaderBlock } from '../../../core/mime/headers.ts';
import {
  headerEnvelope,
  parseReceived,
  DEFAULT_HEADER_SOURCES,
  type HeaderEnvelope,
  type HeaderEnvelopeOptions,
  type HeaderSource,
} from '../../../core/journal/header-envelope.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/journal/', import.meta.url));

interface Case {
  name: string;
  fixture: string;
  options: { sources: HeaderSource[] | 'default'; deliveredToSkip: number; trustedReceivedHosts: string[] };
  expected: HeaderEnvelope;
}

const cases = (JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as { headerEnvelope: Case[] }).headerEnvelope;

function headersOf(text: string): HeaderBlock {
  return parseHeaderBlock(Buffer.from(`${text.replace(/\n/g, '\r\n')}\r\n\r\nbody\r\n`, 'latin1'));
}

function opts(partial: Partial<HeaderEnvelopeOptions>): HeaderEnvelopeOptions {
  return { sources: DEFAULT_HEADER_SOURCES, deliveredToSkip: 0, trustedReceivedHosts: [], ...partial };
}

// ---------------------------------------------------------------------------
// Table-driven over expected.json

test('expected.json covers every multidrop fixture', () => {
  const used = new Set(cases.map((c) => c.fixture));
  for (const name of readdirSync(FIXTURES).filter((n) => n.startsWith('multidrop-'))) assert.ok(used.has(name), name);
  assert.ok(cases.length >= 10);
});

for (const c of cases) {
  test(`${c.fixture}: ${c.name}`, () => {
    const headers = parseHeaderBlock(readFileSync(`${FIXTURES}${c.fixture}`));
    const sources = c.options.sources === 'default' ? DEFAULT_HEADER_SOURCES : c.options.sources;
    const got = headerEnvelope(headers, { ...c.options, sources });
    assert.deepEqual(got, c.expected);
  });
}

// ---------------------------------------------------------------------------
// Targeted cases

test('DEFAULT_HEADER_SOURCES is every source except received-for and the guess', () => {
  assert.deepEqual(DEFAULT_HEADER_SOURCES, ['x-gm-original-to', 'x-original-to', 'delivered-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to']);
});

test('each single-hop header source on its own, the topmost occurrence with an address wins', () => {
  const h = headersOf(
    'X-Envelope-To: <one@example.com>\nX-Envelope-To: two@example.com\nX-Rcpt-To: rcpt@example.com\n' +
      'X-Original-To: not an address\nX-Original-To: orig@example.com\nEnvelope-To: a@example.com, B@EXAMPLE.COM, a@example.com',
  );
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['x-envelope-to'] })).recipients, ['one@example.com']);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['x-rcpt-to'] })).recipients, ['rcpt@example.com']);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['x-original-to'] })).recipients, ['orig@example.com']);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['envelope-to'] })).recipients, ['a@example.com', 'B@example.com']);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['x-gm-original-to'] })), { recipients: [], sender: null, source: null, guessed: false });
});

test('Return-Path: topmost wins, <> is no sender; the guess source falls back to From', () => {
  const h = headersOf('Return-Path: <first@example.org>\nReturn-Path: <second@example.org>\nDelivered-To: a@example.com\nFrom: f@example.org\nTo: t@example.com');
  assert.equal(headerEnvelope(h, opts({})).sender, 'first@example.org');
  assert.equal(headerEnvelope(h, opts({ sources: ['to-cc-from-guess'] })).sender, 'first@example.org');
  const bounce = headersOf('Return-Path: <>\nDelivered-To: a@example.com\nFrom: f@example.org\nTo: t@example.com');
  assert.equal(headerEnvelope(bounce, opts({})).sender, null);
  const noRp = headersOf('Delivered-To: a@example.com\nFrom: "F" <f@example.org>\nTo: t@example.com');
  assert.equal(headerEnvelope(noRp, opts({})).sender, null, 'From is not an envelope sender');
  assert.deepEqual(headerEnvelope(noRp, opts({ sources: ['to-cc-from-guess'] })), {
    recipients: ['t@example.com'],
    sender: 'f@example.org',
    source: 'to-cc-from-guess',
    guessed: true,
  });
});

test('trusted hosts: suffix entries match subdomains only, exact entries match exactly', () => {
  const h = headersOf(
    'Received: from a by example.com with SMTP for <apex@example.com>; Mon, 3 Jun 2024 09:00:00 +0000\n' +
      'Received: from a by badexample.com with SMTP for <bad@example.com>; Mon, 3 Jun 2024 09:00:00 +0000\n' +
      'Received: from a by in.mx.example.com with SMTP for <deep@example.com>; Mon, 3 Jun 2024 09:00:00 +0000',
  );
  const rf = (hosts: string[]): string[] => headerEnvelope(h, opts({ sources: ['received-for'], trustedReceivedHosts: hosts })).recipients;
  assert.deepEqual(rf(['.example.com']), ['deep@example.com']);
  assert.deepEqual(rf(['example.com']), ['apex@example.com']);
  assert.deepEqual(rf(['EXAMPLE.COM.', '.Example.Com']), ['apex@example.com', 'deep@example.com']);
  assert.deepEqual(rf([]), []);
  assert.deepEqual(rf(['', '.']), []);
});

test('parseReceived: comments, bare "for" addresses, missing clauses', () => {
  assert.deepEqual(
    parseReceived('from x (helo by evil.example for <evil@example.com>) by mx.example.com (Postfix) with ESMTP id 1 for <a@example.com>; Mon, 3 Jun 2024 09:00:00 +0000'),
    { by: 'mx.example.com', recipients: ['a@example.com'] },
  );
  assert.deepEqual(parseReceived('from x by mx.example.com with esmtp for b@example.com; date'), { by: 'mx.example.com', recipients: ['b@example.com'] });
  assert.deepEqual(parseReceived('from x by mx.example.com id 5; date'), { by: 'mx.example.com', recipients: [] });
  assert.deepEqual(parseReceived('from x with SMTP for <c@example.com>; date'), { by: null, recipients: ['c@example.com'] });
  assert.deepEqual(parseReceived('by mx.example.com for <d@example.com> ; date'), { by: 'mx.example.com', recipients: ['d@example.com'] });
  assert.deepEqual(parseReceived(''), { by: null, recipients: [] });
  assert.deepEqual(parseReceived('by (unclosed comment for <x@example.com>'), { by: null, recipients: [] });
});

test('a Received without a "by" host is never trusted', () => {
  const h = headersOf('Received: from x with SMTP for <c@example.com>; Mon, 3 Jun 2024 09:00:00 +0000');
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['received-for'], trustedReceivedHosts: ['.example.com', 'x'] })).recipients, []);
});

test('Delivered-To skip: clamped and floored; the skipped header is never used as a fallback', () => {
  const h = headersOf('Delivered-To: top@isp.example\nDelivered-To: garbage\nDelivered-To: deep@example.com');
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['delivered-to'], deliveredToSkip: 1.9 })).recipients, []);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['delivered-to'], deliveredToSkip: 2 })).recipients, ['deep@example.com']);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['delivered-to'], deliveredToSkip: -3 })).recipients, ['top@isp.example']);
  assert.deepEqual(headerEnvelope(h, opts({ sources: ['delivered-to'], deliveredToSkip: Number.NaN })).recipients, ['top@isp.example']);
});

test('the first source that yields wins, in the given order; empty sources yield nothing', () => {
  const h = headersOf('X-Original-To: xo@example.com\nDelivered-To: dt@example.com\nTo: to@example.com');
  assert.equal(headerEnvelope(h, opts({ sources: ['x-gm-original-to', 'delivered-to', 'x-original-to'] })).source, 'delivered-to');
  assert.equal(headerEnvelope(h, opts({ sources: ['to-cc-from-guess', 'x-original-to'] })).source, 'to-cc-from-guess');
  assert.deepEqual(headerEnvelope(h, opts({ sources: [] })), { recipients: [], sender: null, source: null, guessed: false });
});

test('lenient on bad options and bad headers', () => {
  const h = headersOf('Delivered-To: a@example.com');
  assert.deepEqual(headerEnvelope(h, undefined as unknown as HeaderEnvelopeOptions), { recipients: [], sender: null, source: null, guessed: false });
  const weird = { sources: ['nope', 'delivered-to', 42, 'delivered-to'], deliveredToSkip: '1', trustedReceivedHosts: 'x' } as unknown as HeaderEnvelopeOptions;
  assert.deepEqual(headerEnvelope(h, weird).recipients, ['a@example.com']);
  assert.deepEqual(headerEnvelope(undefined as unknown as HeaderBlock, opts({})), { recipients: [], sender: null, source: null, guessed: false });
  assert.deepEqual(
    headerEnvelope({ fields: [{ name: 'Delivered-To', value: 'x@example.com' }], headerBytes: 0, complete: true }, opts({})).recipients,
    ['x@example.com'],
  );
});

test('never throws on random header garbage, and stays bounded on huge headers', () => {
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const names = ['Received', 'Delivered-To', 'X-Original-To', 'Return-Path', 'To', 'Cc', 'From', 'Envelope-To', 'X-Gm-Original-To'];
  const alphabet = 'abc@<>()";:,. \t\\byfor\u00e9\u0000example.com';
  const all: HeaderSource[] = [...DEFAULT_HEADER_SOURCES, 'received-for', 'to-cc-from-guess'];
  for (let i = 0; i < 2000; i++) {
    let text = '';
    const n = Math.floor(rand() * 8);
    for (let k = 0; k < n; k++) {
      let v = '';
      const len = Math.floor(rand() * 120);
      for (let j = 0; j < len; j++) v += alphabet[Math.floor(rand() * alphabet.length)];
      text += `${names[Math.floor(rand() * names.length)]}: ${v}\n`;
    }
    const got = headerEnvelope(headersOf(text), opts({ sources: all, trustedReceivedHosts: ['.example.com', 'by'] }));
    assert.ok(Array.isArray(got.recipients));
  }
  const many = Array.from({ length: 20000 }, (_, i) => `u${i}@example.com`).join(', ');
  const got = headerEnvelope(headersOf(`Envelope-To: ${many}`), opts({}));
  assert.ok(got.recipients.length > 0 && got.recipients.length <= 10000);
  const received = Array.from({ length: 3000 }, (_, i) => `Received: from a by mx.example.com for <r${i}@example.com>; Mon, 3 Jun 2024 09:00:00 +0000`).join('\n');
  const r2 = headerEnvelope(headersOf(received), opts({ sources: ['received-for'], trustedReceivedHosts: ['mx.example.com'] }));
  assert.equal(r2.recipients.length, 3000);
});
