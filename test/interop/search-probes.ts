// Hand-made SEARCH probes for test/interop/imap-search-parity.test.ts: one message per disagreement class
// of issue 15 that real-world samples hold too rarely (unknown transfer encodings, UTF-7 and other
// charsets, raw 8-bit and encoded-word headers, MIME part and attached-message headers, message/partial
// and external-body, odd Date forms, comments and groups in addresses, whitespace in Subject, broken
// base64), each with the queries that tell the readings apart. Where Dovecot's answer is not followed the
// query says why (`dovecotWrong`); the test checks that those still differ and all others agree.
import type { Arg } from './search-parity.ts';

/**
 * Hand-made messages for the disagreement classes the real-world sample holds too rarely (issue 15):
 * each with the queries that tell Postern's reading from the old one. `dovecotWrong` names the queries
 * where Dovecot's answer is not followed, and why.
 */
export interface Probe {
  name: string;
  message: Buffer;
  queries: Array<{ args: Arg[]; dovecotWrong?: string }>;
}

const L = (s: string): Buffer => Buffer.from(s, 'latin1');
const a = (atom: string): Arg => ({ atom });
const q = (str: string): Arg => ({ str });
const GLIBC_NAMES = 'an IANA-registered charset name that glibc iconv does not know: Dovecot reads the text as UTF-8 and cannot find it';
const PRE_1970 = 'Dovecot keeps the sent date as an unsigned 32-bit number, so a date before 1970 wraps past 2100';
const body = (needle: string): Array<{ args: Arg[] }> => [{ args: [a('BODY'), q(needle)] }, { args: [a('TEXT'), q(needle)] }];

export const PROBES: Probe[] = [
  ...['8-bit', 'quoted/printable', 'x-uuencode', 'base64 binary', '', '7bit; x=1', ' BASE64 (comment)'].map((cte, i) => ({
    name: `cte-${i}`,
    message: L(`Subject: cte ${i}\r\nMessage-ID: <cte${i}@probe>\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${cte.includes('BASE64') ? Buffer.from(`zebracte${i} words`).toString('base64') : `zebracte${i} words`}\r\n`),
    queries: body(`zebracte${i}`),
  })),
  {
    name: 'utf-7',
    message: L('Subject: =?utf-7?Q?caf+AOk-_utf7?=\r\nMessage-ID: <utf7@probe>\r\nContent-Type: text/plain; charset=utf-7\r\n\r\nHi Mom -+Jjo--! r+AOk-sum+AOk-\r\n'),
    queries: [...body('résumé'), ...body('mom -☺-!'), { args: [a('SUBJECT'), q('café utf7')] }, { args: [a('SUBJECT'), q('+AOk')] }],
  },
  {
    name: 'charsets',
    message: L('Subject: charsets\r\nMessage-ID: <cs@probe>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4 koi\r\n--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nascii caf\xe9 \xc3\xa9t\xc3\xa9\r\n--b\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\nunknown na\xefve \xc3\xbcber\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nlatin \x93quoted\x94 r\xe9gime\r\n--b--\r\n'),
    queries: [...body('привет koi'), ...body('été'), ...body('café'), ...body('über'), ...body('naïve'), ...body('régime'), ...body('“quoted”')],
  },
  {
    name: '8bit-headers',
    message: L('From: J\xe9r\xf4me <jerome@probe.test>\r\nTo: M\xc3\xbcller <mueller@probe.test>\r\nSubject: caf\xe9 \xc3\xbcber\r\nMessage-ID: <8bit@probe>\r\nX-Note: caf\xe9\r\n\r\nbody\r\n'),
    queries: [
      { args: [a('SUBJECT'), q('café')] }, { args: [a('SUBJECT'), q('über')] }, { args: [a('SUBJECT'), q('caf')] },
      { args: [a('FROM'), q('jérôme')] }, { args: [a('FROM'), q('jerome@probe')] }, { args: [a('TO'), q('müller')] },
      { args: [a('HEADER'), a('X-Note'), q('café')] }, { args: [a('TEXT'), q('café')] }, { args: [a('TEXT'), q('über')] },
    ],
  },
  {
    name: 'encoded-words',
    message: L('Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?w7xiZXI=?= mid=?utf-8?q?=C3=A9?=word =?bogus?q?abc?= =?bogus?q?XYZ?=\r\nFrom: =?utf-8?q?J=C3=B6rg?= <joerg@probe.test>\r\nMessage-ID: <ew@probe>\r\n\r\nbody\r\n'),
    queries: [
      { args: [a('SUBJECT'), q('caféüber')] }, { args: [a('SUBJECT'), q('midéword')] }, { args: [a('SUBJECT'), q('xyz')] },
      ...['abc', 'ABC'].map((n) => ({ args: [a('SUBJECT'), q(n)], dovecotWrong: 'Dovecot does not case-fold the text of an encoded word whose charset iconv does not know, so only text written in upper case can match (RFC 3501: case-insensitive)' })),
      { args: [a('SUBJECT'), q('iso-8859')] }, { args: [a('FROM'), q('jörg <joerg')] }, { args: [a('FROM'), q('=C3')] },
      { args: [a('HEADER'), a('Subject'), q('café')] }, { args: [a('TEXT'), q('subject: café')] },
    ],
  },
  {
    name: 'part-headers',
    message: L('Subject: parts\r\nMessage-ID: <ph@probe>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npreamble zebrapre\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n--b\r\nContent-Type: application/pdf; name="zebrafile.pdf"\r\nContent-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nemVicmFiaW5hcnk=\r\n--b--\r\nepilogue zebraepi\r\n'),
    queries: [...body('zebrafile'), ...body('résumé'), ...body('application/pdf'), ...body('zebrabinary'), ...body('zebrapre'), ...body('zebraepi'), ...body('the text')],
  },
  {
    name: 'attached-message',
    message: L('Subject: outer\r\nMessage-ID: <am@probe>\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\r\nouter text\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?utf-8?q?inner_=C3=BCber?=\r\nFrom: Inner Sender <inner@probe.test>\r\n\r\ninner zebratext\r\n--o--\r\n'),
    queries: [...body('inner über'), ...body('inner@probe'), ...body('zebratext'), ...body('outer text'), { args: [a('SUBJECT'), q('inner')] }, { args: [a('FROM'), q('inner')] }],
  },
  {
    name: 'partial-external',
    message: L('Subject: partial\r\nMessage-ID: <pe@probe>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/partial; id="x@y"; number=1; total=2\r\n\r\nSubject: zebrapart\r\n\r\nfirst zebrahalf\r\n--b\r\nContent-Type: message/external-body; access-type=anon-ftp; site=ftp.probe.test; name=zebra.txt\r\n\r\nContent-Type: text/plain\r\nContent-ID: <zebraext@probe>\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; zebramta.probe.test\r\n--b--\r\n'),
    queries: [...body('zebrapart'), ...body('zebrahalf'), ...body('zebraext'), ...body('zebramta'), ...body('ftp.probe')],
  },
  ...[
    'Tue, 20 Aug 2002 23:30:00 -0500 (CDT)', 'Tue, 20 Aug 2002 10:00:00 GMT+1', 'Tue, 20 Aug 2002 10:00:00 +0700\r\n    MAILTO_TO_SPAM_ADDR version=2.40',
    'Tue 20 Aug 2002 10:00:00 +0000', 'Tuesday, 20 Aug 2002 10:00:00 +0000', '20 Aug 02 10:00 EDT', '20 Aug 69 10:00 +0000', '20 Aug 1969 10:00 +0000',
    '20 Aug 2002 24:00:00 +0000', '31 Sep 2002 10:00 +0000', '20 Aug 2002 10.00.00 +0000', 'Tue, (day) 20 (of) Aug 2002 10:00 (ten) +0000',
    '20-Aug-2002 10:00:00 +0000', '20 August 2002 10:00 +0000', '20 Aug 2002 10:00:00 "GMT"', '20 Aug 2002 10:00:00 Z', 'Tue, 20 Aug 102 10:00 +0000', '20 Aug 2002 9:05 +0000',
  ].map((date, i) => ({
    name: `date-${i}`,
    message: L(`Subject: date ${i}\r\nMessage-ID: <date${i}@probe>\r\nDate: ${date}\r\n\r\nzebradate${i}\r\n`),
    queries: ['SENTON 20-Aug-2002', 'SENTON 20-Aug-1969', 'SENTON 20-Aug-2069', 'SENTON 1-Oct-2002', 'SENTBEFORE 2-Jan-1970', 'SENTSINCE 21-Aug-2002'].map((k) => ({
      args: [a('BODY'), q(`zebradate${i}`), ...k.split(' ').map(a)],
      ...(date.includes('1969') && k !== 'SENTON 20-Aug-2002' && !k.includes('2069') && !k.includes('Oct') ? { dovecotWrong: PRE_1970 } : {}),
    })),
  })),
  {
    name: 'address-comments',
    message: L('From: jdoe@probe.test (John Zebra Doe)\r\nTo: "Q. Public" <q@probe.test> (the public), Group: a@probe.test, b (bee) @probe.test;\r\nCc: Mary (not Smith) Jones <mj@probe.test>\r\nBcc: <@route.probe:r@probe.test>, "" <>\r\nSubject: addresses\r\nMessage-ID: <ac@probe>\r\n\r\nbody\r\n'),
    queries: [
      { args: [a('FROM'), q('john zebra doe')] }, { args: [a('FROM'), q('doe <jdoe')] }, { args: [a('FROM'), q('(john')] },
      { args: [a('TO'), q('the public')] }, { args: [a('TO'), q('"q. public"')] }, { args: [a('TO'), q('group: <a@')] }, { args: [a('TO'), q('bee')] }, { args: [a('TO'), q('<b@probe.test>;')] },
      { args: [a('CC'), q('not smith')] }, { args: [a('CC'), q('mary jones')] }, { args: [a('BCC'), q('@route.probe:r@')] }, { args: [a('BCC'), q('missing_mailbox')] },
      { args: [a('HEADER'), a('From'), q('(john')] }, { args: [a('HEADER'), a('Cc'), q('not smith')] },
      // The list as written back (address-list.ts writeAddressList), whole:
      { args: [a('FROM'), q('"John Zebra Doe" <jdoe@probe.test>')] }, { args: [a('TO'), q('"Q. Public" <q@probe.test>, Group: <a@probe.test>, bee <b@probe.test>;')] },
      { args: [a('CC'), q('"Mary Jones" <mj@probe.test>')] }, { args: [a('BCC'), q('<@route.probe:r@probe.test>, <MISSING_MAILBOX@MISSING_DOMAIN>')] },
    ],
  },
  {
    name: 'invalid-content-type',
    message: L('Subject: no subtype\r\nMessage-ID: <ict@probe>\r\nContent-Type: text; charset=us-ascii\r\n\r\nzebrainvalid body\r\n'),
    queries: body('zebrainvalid').map((x) => ({ ...x, dovecotWrong: 'RFC 2045 5.2: a syntactically invalid Content-Type is text/plain; Dovecot never searches the body' })),
  },
  {
    name: 'subject-whitespace',
    message: L('Subject: two  spaces\tand\r\n\ta fold\r\nMessage-ID: <sw@probe>\r\nX-Spaced: two  spaces\r\n\r\nbody\r\n'),
    queries: [
      { args: [a('SUBJECT'), q('two spaces and')] }, { args: [a('SUBJECT'), q('two  spaces')] }, { args: [a('SUBJECT'), q('and a fold')] },
      { args: [a('HEADER'), a('X-Spaced'), q('two  spaces')] }, { args: [a('HEADER'), a('Subject'), q('two  spaces')] }, { args: [a('HEADER'), a('Subject'), q('and  a fold')] },
    ],
  },
  {
    name: 'charset-names-glibc-lacks',
    message: L('Subject: =?unicode-1-1-utf-7?Q?+AOk-t+AOk-_zebrautf7?=\r\nMessage-ID: <glibc@probe>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=ks_c_5601-1987\r\n\r\n\xc7\xd1\xb1\xb9\xbe\xee zebrakorean\r\n--b\r\nContent-Type: text/plain; charset=unicode-1-1-utf-7\r\n\r\nr+AOk-sum+AOk- zebrautf7\r\n--b--\r\n'),
    queries: [
      ...body('한국어').map((x) => ({ ...x, dovecotWrong: GLIBC_NAMES })), ...body('zebrakorean'),
      ...body('résumé zebrautf7').map((x) => ({ ...x, dovecotWrong: GLIBC_NAMES })), { args: [a('SUBJECT'), q('été zebrautf7')], dovecotWrong: GLIBC_NAMES },
    ],
  },
  {
    name: 'address-junk',
    message: L('From: a@probe.test\r\nTo: <first@probe.test>junk.test, <zebrasecond@probe.test>\r\nSubject: junk after an address\r\nMessage-ID: <aj@probe>\r\n\r\nbody\r\n'),
    queries: [
      { args: [a('TO'), q('first@probe')] },
      { args: [a('TO'), q('zebrasecond')], dovecotWrong: 'Dovecot stops reading an address list at junk after an address, dropping every later recipient from its ENVELOPE and from TO; Postern reads on (and lists them in its ENVELOPE)' },
    ],
  },
  {
    name: 'broken-base64',
    message: L('Subject: b64\r\nMessage-ID: <b64@probe>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n' + Buffer.from('zebraone words').toString('base64') + '\r\n' + Buffer.from('zebratwo more').toString('base64') + '\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n' + Buffer.from('zebrathree ok').toString('base64').replace(/=+$/, '') + '-_*' + Buffer.from('zebrafour').toString('base64') + '\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n' + Buffer.from('zebrafive12!').toString('base64') + '*' + Buffer.from('zebrasix ok!').toString('base64') + '\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nzebra=3Dseven =ZZ zebra=\r\neight =e9t=C3=A9\r\n--b--\r\n'),
    queries: [...body('zebraone'), ...body('zebratwo'), ...body('zebrathree'), ...body('zebrafour'), ...body('zebrafive12'),
      ...body('zebrasix ok').map((x) => ({ ...x, dovecotWrong: 'RFC 2045 6.8: characters outside the base64 alphabet are ignored; Dovecot stops decoding the part at the first one' })),
      ...body('zebra=seven'), ...body('=zz zebraeight'), ...body('été')],
  },
];

