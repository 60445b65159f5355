// The IMAP plugin's address-list parser on hostile input: every input ends, bounded, without throwing;
// and lists written back as Dovecot writes them for SEARCH FROM/TO/CC/BCC (checked against Dovecot 2.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddressList, writeAddressList } from '../../../../plugins/imap/message/address-list.ts';

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

test('address lists are written back as Dovecot does: comments dropped or taken as the name, groups, routes, placeholders', () => {
  const write = (v: string): string => writeAddressList(parseAddressList(v));
  assert.equal(write('jdoe@probe.test (John Zebra Doe)'), '"John Zebra Doe" <jdoe@probe.test>');
  assert.equal(write('"Q. Public" <q@probe.test> (the public)'), '"Q. Public" <q@probe.test>');
  assert.equal(write('Mary (not Smith) Jones <mj@probe.test>'), '"Mary Jones" <mj@probe.test>');
  assert.equal(write('Group: a@probe.test, b (bee) @probe.test;'), 'Group: <a@probe.test>, bee <b@probe.test>;');
  assert.equal(write('Empty:;'), 'Empty:;');
  assert.equal(write('<@route.probe:r@probe.test>, "" <>'), '<@route.probe:r@probe.test>, <MISSING_MAILBOX@MISSING_DOMAIN>');
  assert.equal(write('=?utf-8?q?J=C3=B6rg?= <joerg@probe.test>'), '=?utf-8?q?J=C3=B6rg?= <joerg@probe.test>', 'encoded words stay unquoted so they decode');
  assert.equal(write("O'Brien <ob@x.test>, \"a\\\\b\" <c@d>"), "O'Brien <ob@x.test>, \"a\\\\b\" <c@d>");
  assert.equal(write('Dr. Who <who@x.test>'), '"Dr. Who" <who@x.test>', 'a dot in a name is quoted');
  assert.equal(write('first.last@x.test'), '<first.last@x.test>', 'not in a mailbox');
  assert.equal(write(''), '');
});
