// IMAP output encodings and mailbox naming: quoted strings vs literals, dates, modified UTF-7, LIST patterns.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMailboxName, encodeMailboxName, internalDate, parseSearchDate, sentDateDay, sentDay, str } from '../../../../plugins/imap/encode.ts';
import { patternMatcher } from '../../../../plugins/imap/mailboxes.ts';
import { yearOf } from '../../../../plugins/imap/folder-index.ts';

describe('IMAP encodings', () => {
  it('quotes plain ASCII and sends anything else as a literal', () => {
    assert.equal(str('a "b" \\c'), '"a \\"b\\" \\\\c"');
    assert.equal(str('März'), '{5}\r\nMärz');
    assert.equal(str('a\r\nb'), '{4}\r\na\r\nb');
  });

  it('formats INTERNALDATE and parses SEARCH dates', () => {
    assert.equal(internalDate('2026-03-05T07:08:09.123Z'), '"05-Mar-2026 07:08:09 +0000"');
    assert.equal(parseSearchDate('1-Feb-1994'), Math.floor(Date.UTC(1994, 1, 1) / 86400000));
    assert.equal(parseSearchDate('"01-feb-1994"'), Math.floor(Date.UTC(1994, 1, 1) / 86400000));
    for (const bad of ['1994-02-01', '1-Foo-1994', '0-Feb-1994', '32-Feb-1994', 'yesterday']) assert.equal(parseSearchDate(bad), null, bad);
  });

  it('round-trips mailbox names through modified UTF-7 (RFC 3501 5.1.3)', () => {
    assert.equal(encodeMailboxName('Entwürfe'), 'Entw&APw-rfe');
    assert.equal(encodeMailboxName('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
    assert.equal(encodeMailboxName('A&B'), 'A&-B');
    for (const name of ['Entwürfe', 'A&B', '台北', 'plain', '😀 smile']) assert.equal(decodeMailboxName(encodeMailboxName(name)), name);
    for (const bad of ['&Jjo', '&!!-', 'caf\u00e9', '&AGE']) assert.equal(decodeMailboxName(bad), null, bad);
  });

  it('matches LIST patterns with * and %, INBOX case-insensitively', () => {
    const m = patternMatcher('', '%');
    assert.ok(m('INBOX') && m('Sent') && !m('INBOX/2024'));
    assert.ok(patternMatcher('', '*')('Users/bob/Inbox'));
    assert.ok(patternMatcher('', 'inbox/%')('INBOX/2024'));
    assert.ok(patternMatcher('INBOX/', '20*')('INBOX/2024'));
    assert.ok(!patternMatcher('', 'a.c')('abc'), 'regex characters are literal');
  });

  it('files messages by their Date year, falling back to the archive date', () => {
    assert.equal(yearOf({ date: '2021-06-01T00:00:00.000Z', internalDate: '2026-01-01T00:00:00.000Z' }), 2021);
    assert.equal(yearOf({ date: null, internalDate: '2025-01-01T00:00:00.000Z' }), 2025);
    assert.equal(yearOf({ date: '1901-01-01T00:00:00.000Z', internalDate: '2025-01-01T00:00:00.000Z' }), 2025);
  });
});

describe('header field extraction for SEARCH', () => {
  it('keeps every occurrence of the field with its continuation lines, and nothing else', async () => {
    const { extractField } = await import('../../../../plugins/imap/message-store.ts');
    const header = Buffer.from('From: a@x\r\nSubject: one\r\n two\r\nX-Subject: no\r\nsubject : again\r\nTo: b@y\r\n\r\nSubject: body\r\n');
    assert.equal(extractField(header, 'Subject').toString(), 'Subject: one\r\n two\r\nsubject : again\r\n\r\n');
    assert.equal(extractField(header, 'Cc').toString(), '\r\n');
    assert.equal(extractField(header, 'x-subject').toString(), 'X-Subject: no\r\n\r\n');
  });

  it('takes the SENT* day from the Date field in the zone it was written in, as Dovecot does', () => {
    const day = (lines: string): number => sentDay(Buffer.from(lines, 'latin1'));
    const aug20 = parseSearchDate('20-Aug-2002');
    // "GMT+1" (4 caramail.com messages in the SpamAssassin corpus) is no RFC 5322 zone: read as +0000.
    assert.equal(day('Date: Tue, 20 Aug 2002 10:00:00 GMT+1\r\n\r\n'), aug20);
    assert.equal(day('Date: Tue, 20 Aug 2002 23:30:00 GMT+1\r\n\r\n'), aug20);
    assert.equal(day('Date: Tue, 20 Aug 2002 00:30:00 UTC-05\r\n\r\n'), aug20);
    // The written day counts, not the UTC day.
    assert.equal(day('Date: Tue, 20 Aug 2002 23:30:00 -0500\r\n\r\n'), aug20);
    assert.equal(day('Date: Tue, 20 Aug 2002 00:30:00 +0200\r\n\r\n'), aug20);
    assert.equal(day('date:\r\n Tue, 20 Aug 2002\r\n 10:00:00 +0000\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n'), aug20, 'folded, first field');
    // Missing or unreadable: 1-Jan-1970.
    assert.equal(day('\r\n'), 0);
    assert.equal(day('Date: garbage\r\n\r\n'), 0);
    assert.equal(day('Date: 32 Aug 2002 10:00:00 +0000\r\n\r\n'), 0);
    // Whatever stands after the zone is ignored, an unknown zone word is UTC (Dovecot's message_date_parse).
    assert.equal(day('Date: Tue, 20 Aug 2002 10:00:00 GMT+1x\r\n\r\n'), aug20);
  });

  // Each form pinned from Debian Dovecot 2.3's answers to SENTON/SENTBEFORE over the same Date headers
  // (the date-* probes of test/interop/search-parity.ts; the suite checks them against Dovecot).
  it('reads odd Date forms exactly as Dovecot does: comments, zones, trailing junk, two-digit years, bad ranges', () => {
    const aug20 = (y: number): number => Math.floor(Date.UTC(y, 7, 20) / 86400000);
    const read: Array<[string, number | null]> = [
      ['Tue, 20 Aug 2002 23:30:00 -0500 (CDT)', aug20(2002)],
      ['Tue, 20 Aug 2002 10:00:00 GMT+1', aug20(2002)],
      ['Tue, 20 Aug 2002 10:00:00 +0700\r\n    MAILTO_TO_SPAM_ADDR version=2.40', aug20(2002)],
      ['20 Aug 02 10:00 EDT', aug20(2002)],
      ['20 Aug 69 10:00 +0000', aug20(2069)],
      ['20 Aug 2002 10.00.00 +0000', aug20(2002)],
      ['Tue, (day) 20 (of) Aug 2002 10:00 (ten) +0000', aug20(2002)],
      ['20 August 2002 10:00 +0000', aug20(2002)],
      ['20 Aug 2002 10:00:00 Z', aug20(2002)],
      ['20 Aug 2002 9:05 +0000', aug20(2002)],
      ['Tue 20 Aug 2002 10:00:00 +0000', null],
      ['Tuesday, 20 Aug 2002 10:00:00 +0000', null],
      ['20 Aug 2002 24:00:00 +0000', null],
      ['31 Sep 2002 10:00 +0000', null],
      ['20-Aug-2002 10:00:00 +0000', null],
      ['20 Aug 2002 10:00:00 "GMT"', null],
      ['Tue, 20 Aug 102 10:00 +0000', null],
      ['Tue, 20 Aug 2002 10:00 (unclosed', null],
    ];
    for (const [value, want] of read) assert.equal(sentDateDay(value), want, value);
    // Before 1970 the written day counts (Dovecot wraps such dates past 2100: not followed).
    assert.equal(sentDateDay('20 Aug 1969 10:00 +0000'), aug20(1969));
  });
});
