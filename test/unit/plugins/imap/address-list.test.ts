// The IMAP plugin's address-list parser on hostile input: every input ends, bounded, without throwing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddressList } from '../../../../plugins/imap/message/address-list.ts';

test('a stray ")" outside a comment is consumed (was: an endless loop growing memory until V8 aborted)', () => {
  for (const value of [')', 'a@b, )', ') <x@y>', 'Group: ) ;', '"q" ) <a@b>', ')))(', '<a@b>)']) {
    const out = parseAddressList(value);
    assert.ok(Array.isArray(out), value);
    assert.ok(out.length <= 1000, value);
  }
});

test('an address after a stray ")" is still found', () => {
  const out = parseAddressList(') alice@example.com');
  assert.ok(out.some((a) => a.host === 'example.com'));
});

test('every printable ASCII character alone or repeated ends', () => {
  for (let c = 0x20; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    parseAddressList(ch);
    parseAddressList(ch.repeat(5000));
    parseAddressList(`a${ch}b@c${ch}d, ${ch}<e@f>${ch}`);
  }
});
