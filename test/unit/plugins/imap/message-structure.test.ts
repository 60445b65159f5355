// computeImapData on hand-written edge cases (pinned from Dovecot) and on malformed MIME that must never
// throw: absurd nesting, missing boundaries, bare LF, 8-bit headers, binary garbage. Also imapDataOf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { computeImapData, imapDataOf, type ImapMessageData, type PartIndex } from '../../../../plugins/imap/message/index.ts';
import { MAX_DEPTH, MAX_PARTS } from '../../../../plugins/imap/message/types.ts';
import { viewLength } from '../../../../plugins/imap/message/crlf.ts';

const compute = (raw: string | Buffer, chunk = 5): Promise<ImapMessageData> => {
  const b = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const pieces: Buffer[] = [];
  for (let i = 0; i < b.length; i += chunk) pieces.push(b.subarray(i, i + chunk));
  return computeImapData(Readable.from(pieces));
};

// Expected strings come from Debian's Dovecot 2.3 (`/usr/lib/dovecot/imap` in PREAUTH mode over a
// throwaway Maildir holding exactly these bytes; FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)).
const DOVECOT = [
  {
    what: "address lists with groups, routes, comments, quotes, missing domains; every extension field; RFC 2231 continuation",
    raw: "From: \"Doe, John\" <john@x.org>, bare@y.org (Bare Name), nodomain, \"q\\\"uote\" <q@x>\r\nTo: undisclosed-recipients:;\r\nCc: Team: a@b.c, B <b@c.d>;, <@r1,@r2:route@x.y>\r\nSubject: =?utf-8?q?caf=C3=A9?= \"q\" back\\slash\r\nDate: \r\nMessage-ID: <m1@x>\r\nContent-Type: Text/Plain; CharSet=UTF-8; Format=flowed; name*0=\"a\"; name*1=\"b.txt\"\r\nContent-Transfer-Encoding: QUOTED-PRINTABLE\r\nContent-ID: <cid1>\r\nContent-Description: desc\r\nContent-Disposition: attachment; filename=\"x.txt\"\r\nContent-Language: en, de\r\nContent-Location: http://x/y\r\nContent-MD5: abc\r\n\r\nhello",
    envelope: "(\"\" {36}\r\n=?utf-8?q?caf=C3=A9?= \"q\" back\\slash ((\"Doe, John\" NIL \"john\" \"x.org\")(\"Bare Name\" NIL \"bare\" \"y.org\")(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")({6}\r\nq\"uote NIL \"q\" \"x\")) ((\"Doe, John\" NIL \"john\" \"x.org\")(\"Bare Name\" NIL \"bare\" \"y.org\")(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")({6}\r\nq\"uote NIL \"q\" \"x\")) ((\"Doe, John\" NIL \"john\" \"x.org\")(\"Bare Name\" NIL \"bare\" \"y.org\")(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")({6}\r\nq\"uote NIL \"q\" \"x\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"b.c\")(\"B\" NIL \"b\" \"c.d\")(NIL NIL NIL NIL)(NIL \"@r1,@r2\" \"route\" \"x.y\")) NIL NIL \"<m1@x>\")",
    bodystructure: "(\"Text\" \"Plain\" (\"CharSet\" \"UTF-8\" \"Format\" \"flowed\" \"name\" \"ab.txt\") \"<cid1>\" \"desc\" \"QUOTED-PRINTABLE\" 5 0 \"abc\" (\"attachment\" (\"filename\" \"x.txt\")) (\"en\" \"de\") \"http://x/y\")",
    body: "(\"Text\" \"Plain\" (\"CharSet\" \"UTF-8\" \"Format\" \"flowed\" \"name\" \"ab.txt\") \"<cid1>\" \"desc\" \"QUOTED-PRINTABLE\" 5 0)",
  },
  {
    what: "nested multipart, message/rfc822 with its own multipart, preamble and epilogue",
    raw: "From: a@b.c\r\nSubject: mp\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\n\r\npart one\r\n--XX\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@x.y\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--YY--\r\n\r\n--XX--\r\nepilogue\r\n",
    envelope: "(NIL \"mp\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 192 (NIL \"inner\" ((NIL NIL \"inner\" \"x.y\")) ((NIL NIL \"inner\" \"x.y\")) ((NIL NIL \"inner\" \"x.y\")) NIL NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"base64\" 8 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"YY\") NIL NIL NIL) 10 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)",
    body: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 192 (NIL \"inner\" ((NIL NIL \"inner\" \"x.y\")) ((NIL NIL \"inner\" \"x.y\")) ((NIL NIL \"inner\" \"x.y\")) NIL NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"base64\" 8 0) \"alternative\") 10) \"mixed\")",
  },
  {
    what: "multipart without a boundary parameter",
    raw: "From: a@b.c\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n",
    envelope: "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)",
    body: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")",
  },
  {
    what: "multipart whose boundary never appears",
    raw: "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=ZZ\r\n\r\nnever found\r\n",
    envelope: "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"ZZ\") NIL NIL NIL)",
    body: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")",
  },
  {
    what: "bare LF line ends and an unterminated last part",
    raw: "From: a@b.c\nSubject: lf\nContent-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n\nbody lf\n--ZZ\nContent-Type: text/plain\n\nunterminated",
    envelope: "(NIL \"lf\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"ZZ\") NIL NIL NIL)",
    body: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0) \"mixed\")",
  },
  {
    what: "header only, empty body",
    raw: "Subject: x\r\n\r\n",
    envelope: "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    bodystructure: "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)",
    body: "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
  },
  {
    what: "body without a final line break",
    raw: "Subject: x\r\n\r\na\r\nb",
    envelope: "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    bodystructure: "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1 NIL NIL NIL NIL)",
    body: "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1)",
  },
  {
    what: "empty part and an unterminated close delimiter",
    raw: "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=ZZ\r\n\r\n--ZZ\r\n\r\n--ZZ\r\n\r\nx\r\n\r\n\r\n--ZZ--",
    envelope: "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 2 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"ZZ\") NIL NIL NIL)",
    body: "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 2) \"mixed\")",
  },
  {
    what: "RFC 2231 encoded parameter and a repeated Content-Type",
    raw: "From: a@b.c\r\nContent-Type: text/plain; name*=utf-8''%C3%A9.txt; format=flowed\r\nContent-Type: text/html\r\n\r\nx\r\n",
    envelope: "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "(\"text\" \"plain\" (\"format\" \"flowed\" \"name*\" \"utf-8''%C3%A9.txt\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    body: "(\"text\" \"plain\" (\"format\" \"flowed\" \"name*\" \"utf-8''%C3%A9.txt\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
  },
  {
    what: "non-text leaf with a parameterless disposition",
    raw: "From: a@b.c\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: inline\r\n\r\nx\r\n",
    envelope: "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "(\"application\" \"pdf\" (\"name\" \"x.pdf\") NIL NIL \"7bit\" 3 NIL (\"inline\" NIL) NIL NIL)",
    body: "(\"application\" \"pdf\" (\"name\" \"x.pdf\") NIL NIL \"7bit\" 3)",
  },
  {
    what: "multipart/digest (parts default to message/rfc822)",
    raw: "From: a@b.c\r\nContent-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: d1\r\n\r\nb\r\n--D--\r\n",
    envelope: "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
    bodystructure: "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 16 (NIL \"d1\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL) \"digest\" (\"boundary\" \"D\") NIL NIL NIL)",
    body: "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 16 (NIL \"d1\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) 2) \"digest\")",
  },
];

for (const c of DOVECOT) {
  test(`equals Dovecot: ${c.what}`, async () => {
    const data = await compute(c.raw);
    assert.equal(data.envelope, c.envelope);
    assert.equal(data.bodystructure, c.bodystructure);
    assert.equal(data.body, c.body);
  });
}

test('8-bit headers: the raw bytes are kept (byte strings, literals count bytes), as Dovecot sends them', async () => {
  // Dovecot answers {8} and the latin1 bytes for the subject, and the UTF-8 bytes of "Jörg" as {5}.
  const data = await compute(Buffer.from('Subject: \xe9t\xe9 8bit\r\nFrom: J\xc3\xb6rg <j@x.de>\r\nContent-Type: text/plain; name="\xe9.txt"; boundary="\xc3\xa9"\r\n\r\nbody\r\n', 'latin1'));
  assert.equal(data.encoding, 'latin1');
  assert.equal(data.envelope, '(NIL {8}\r\n\xe9t\xe9 8bit (({5}\r\nJ\xc3\xb6rg NIL "j" "x.de")) (({5}\r\nJ\xc3\xb6rg NIL "j" "x.de")) (({5}\r\nJ\xc3\xb6rg NIL "j" "x.de")) NIL NIL NIL NIL NIL)');
  assert.equal(data.body, '("text" "plain" ("name" {5}\r\n\xe9.txt "boundary" {2}\r\n\xc3\xa9 "charset" "us-ascii") NIL NIL "7bit" 6 1)');
  // A multipart boundary made of 8-bit bytes is matched byte for byte.
  const mp = await compute(Buffer.from('Content-Type: multipart/mixed; boundary="\xc3\xa9"\r\n\r\n--\xc3\xa9\r\n\r\nx\r\n--\xc3\xa9--\r\n', 'latin1'));
  assert.match(mp.body, /^\(\("text" "plain" \("charset" "us-ascii"\) NIL NIL "7bit" 1 0\) "mixed"\)$/);
  assert.ok(imapDataOf({ imap: JSON.parse(JSON.stringify(data)) as unknown }), 'byte strings survive JSON');
  assert.equal(imapDataOf({ imap: { ...data, envelope: '(\u0100)' } }), null, 'a byte string holds no character above 0xFF');
  assert.equal(imapDataOf({ imap: { ...data, encoding: 'utf16' } }), null);
  const { encoding: _, view: _v, size: _s, ...legacy } = data;
  assert.equal(imapDataOf({ imap: { ...legacy, envelope: '("\u20ac")' } }), null, 'data of the first format (UTF-8 text, raw offsets) is recomputed');
});

test('header size and the top-level part index', async () => {
  const data = await compute('Subject: a\r\n\r\nbody\r\n');
  assert.equal(data.headerSize, 14);
  assert.deepEqual(data.parts, { h: 0, b: 14, e: 20, t: 'text/plain', c: 'us-ascii' });
  // Bare LF reads as CRLF: offsets and sizes are those of the view.
  const lf = await compute('Subject: a\n\nbody\n');
  assert.equal(lf.headerSize, 14);
  assert.deepEqual(lf.parts, data.parts);
  assert.equal(lf.size, 20);
  assert.equal(lf.bodystructure, data.bodystructure);
});

const depthOf = (p: PartIndex): number => Math.max(0, ...(p.p ?? []).map((c) => 1 + depthOf(c)), p.m ? 1 + depthOf(p.m) : 0);
const countOf = (p: PartIndex): number => 1 + (p.p ?? []).reduce((n, c) => n + countOf(c), 0) + (p.m ? countOf(p.m) : 0);

test('absurd multipart nesting is cut at the depth limit, never throws', async () => {
  let raw = 'From: a@b.c\r\n';
  for (let i = 0; i < 500; i++) raw += `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`;
  raw += 'Content-Type: text/plain\r\n\r\ndeep\r\n';
  const data = await compute(raw, 4096);
  const depth = depthOf(data.parts as PartIndex);
  assert.ok(depth <= MAX_DEPTH + 1, `depth ${depth}`);
  assert.ok(data.bodystructure.startsWith('(('));
  assert.ok(imapDataOf({ imap: data }));
});

test('absurd message/rfc822 nesting is cut at the depth limit', async () => {
  const raw = 'Content-Type: message/rfc822\r\n\r\n'.repeat(300) + 'Subject: innermost\r\n\r\nx\r\n';
  const data = await compute(raw, 4096);
  assert.ok(depthOf(data.parts as PartIndex) <= MAX_DEPTH + 1);
  assert.ok(imapDataOf({ imap: data }));
});

test('a flood of parts is bounded by the part limit', async () => {
  const raw = 'Content-Type: multipart/mixed; boundary=x\r\n\r\n' + '--x\r\n\r\np\r\n'.repeat(MAX_PARTS + 500) + '--x--\r\n';
  const data = await compute(raw, 65536);
  assert.ok(countOf(data.parts as PartIndex) <= MAX_PARTS);
  assert.ok(imapDataOf({ imap: data }));
});

test('malformed input never throws and always gives a usable structure', async () => {
  const cases: Array<string | Buffer> = [
    '',
    '\r\n',
    'no header at all, just text',
    'Subject: header without end',
    'Content-Type: multipart/mixed; boundary="unterminated\r\n\r\n--unterminated\r\n\r\nx',
    'Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nsame boundary nested\r\n--a--\r\n',
    'Content-Type: message/rfc822\r\n\r\n',
    'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n----\r\nx\r\n',
    'Content-Type: ///;;;===\r\n\r\nx',
    'Content-Type: text/plain; charset\r\nContent-Disposition: ;\r\nContent-Language: ,,\r\n\r\nx',
    'From: <<<@@@>>>, ,;:;:, "unterminated\r\nTo: (unterminated comment\r\nCc: a@\r\nBcc: @b\r\n\r\n',
    'Content-Type: multipart/alternative; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n--q--',
    Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7919) % 256)),
    'X: ' + 'y'.repeat(600000) + '\r\n\r\nbody',
  ];
  for (const raw of cases) {
    const bytes = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
    const data = await compute(bytes, 3);
    assert.ok(imapDataOf({ imap: data }), `usable data for ${JSON.stringify(bytes.toString('latin1').slice(0, 40))}`);
    assert.equal((data.parts as PartIndex).e, viewLength(bytes));
    assert.equal(data.size, viewLength(bytes));
    assert.match(data.envelope, /^\(.*\)$/s);
  }
  // A header that never ends is all header; the body is empty.
  const noEnd = await compute('Subject: header without end');
  assert.equal(noEnd.bodystructure, '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)');
  assert.equal(noEnd.envelope, '(NIL "header without end" NIL NIL NIL NIL NIL NIL NIL NIL)');
  // A message/rfc822 part with nothing in it still has an ENVELOPE and a body.
  const empty = await compute('Content-Type: message/rfc822\r\n\r\n');
  assert.equal(empty.bodystructure, '("message" "rfc822" NIL NIL NIL "7bit" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL)');
});

test('imapDataOf accepts stored data and refuses anything malformed', async () => {
  const data = await compute('Subject: x\r\n\r\ny\r\n');
  const stored = JSON.parse(JSON.stringify({ imap: data })) as Record<string, unknown>;
  assert.deepEqual(imapDataOf(stored), data);
  assert.equal(imapDataOf(undefined), null);
  assert.equal(imapDataOf({}), null);
  assert.equal(imapDataOf({ imap: 'x' }), null);
  assert.equal(imapDataOf({ imap: { ...data, envelope: 5 } }), null);
  assert.equal(imapDataOf({ imap: { ...data, body: 'NIL' } }), null);
  assert.equal(imapDataOf({ imap: { ...data, headerSize: -1 } }), null);
  assert.equal(imapDataOf({ imap: { ...data, view: undefined } }), null, 'raw-offset data of an earlier format');
  assert.equal(imapDataOf({ imap: { ...data, view: 'lf' } }), null);
  assert.equal(imapDataOf({ imap: { ...data, size: undefined } }), null);
  assert.equal(imapDataOf({ imap: { ...data, size: -1 } }), null);
  assert.equal(imapDataOf({ imap: { ...data, size: 1.5 } }), null);
  assert.equal(imapDataOf({ imap: { ...data, size: data.size - 1 } }), null, 'a size smaller than the part index');
  assert.equal(imapDataOf({ imap: { ...data, headerSize: data.size + 1 } }), null);
  assert.equal(imapDataOf({ imap: { ...data, parts: { h: 5, b: 1, e: 9, t: 'text/plain' } } }), null);
  assert.equal(imapDataOf({ imap: { ...data, parts: { h: 0, b: 1, e: 9, t: 'text/plain', p: [{ h: 'x' }] } } }), null);
  let deep: Record<string, unknown> = { h: 0, b: 0, e: 0, t: 'text/plain' };
  for (let i = 0; i < 100; i++) deep = { h: 0, b: 0, e: 0, t: 'message/rfc822', m: deep };
  assert.equal(imapDataOf({ imap: { ...data, parts: deep } }), null);
});

test('an angle address with spaces or a group inside is a syntax error, as Dovecot reports it', async () => {
  // Dovecot 2.3 answers ((NIL NIL "Undisclosed" "SYNTAX_ERROR")) for the first address and stops there;
  // we report each address of the list.
  const data = await compute('To: <Undisclosed Recipients@x.y>, <Undisclosed-Recipient:;>\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\nContent-Transfer-Encoding: 7BIT\r\n\r\nx\r\n');
  assert.equal(data.envelope, '(NIL NIL NIL NIL NIL ((NIL NIL "Undisclosed" "SYNTAX_ERROR")(NIL NIL "Undisclosed-Recipient" "SYNTAX_ERROR")) NIL NIL NIL NIL)');
  // Pinned from Dovecot for the same bytes: the header's case is kept.
  assert.equal(data.bodystructure, '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 1 NIL NIL NIL NIL)');
});

test('broken routes, empty addresses, folded In-Reply-To and escaped strings are answered as Dovecot does', async () => {
  // Pinned from Dovecot 2.3 for exactly these bytes (FETCH 1 ENVELOPE).
  const data = await compute('From: <@x.y>, "Only Name" <>\r\nTo: a@\r\nIn-Reply-To:\r\n\t<r@x> (comment) \r\nMessage-ID:\r\n <m\\\\1@x>\r\nSubject: a "quoted" word\r\n\r\nx\r\n');
  const from = '((NIL "INVALID_ROUTE" "MISSING_MAILBOX" "MISSING_DOMAIN")("Only Name" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))';
  assert.equal(data.envelope, `(NIL {15}\r\na "quoted" word ${from} ${from} ${from} ((NIL NIL "a" "MISSING_DOMAIN")) NIL NIL "\t<r@x> (comment) " " <m\\\\\\\\1@x>")`);
  // Five or more quotes and backslashes make a literal instead of an escaped quoted string.
  const many = await compute('Message-ID: <a\\b\\c\\d\\e\\f>\r\n\r\n');
  assert.match(many.envelope, /\{13\}\r\n<a\\b\\c\\d\\e\\f>\)$/);
});

test('a repeated address field contributes all its addresses (Dovecot reads every Cc: line)', async () => {
  const data = await compute('To: a@x.y\r\nCc: b@x.y\r\nSubject: s\r\nCc: "C" <c@x.y>, d@x.y\r\n\r\n');
  assert.equal(data.envelope, '(NIL "s" NIL NIL NIL ((NIL NIL "a" "x.y")) ((NIL NIL "b" "x.y")("C" NIL "c" "x.y")(NIL NIL "d" "x.y")) NIL NIL NIL)');
});
