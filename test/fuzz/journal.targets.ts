// Fuzz targets for core/journal: whole journal reports (Exchange / WorkMail, NDR-wrapped), the text
// envelope part with its charset decoding, and the multidrop header envelope (Delivered-To, Received "for").
import { parseJournalReport } from '../../core/journal/journal-report.ts';
import { decodeText, parseEnvelope } from '../../core/journal/journal-envelope.ts';
import { headerEnvelope, parseReceived, type HeaderSource } from '../../core/journal/header-envelope.ts';
import { headerValues, parseHeaderBlock } from '../../core/mime/headers.ts';
import { Problems, partBody, readNode, walkLeaves } from '../../core/mime/multipart.ts';
import { check, type FuzzGroup } from './target.ts';
import { fixtureFiles, headerBlockSeeds, messageSeeds, nastyStrings } from './seeds.ts';

const journalMessages = (): Buffer[] => fixtureFiles('journal').filter((b) => b[0] !== 0x7b);

/** The text/plain envelope parts of the journal fixtures, decoded. */
function envelopeParts(): Buffer[] {
  const out: Buffer[] = [];
  for (const m of journalMessages()) {
    const problems = new Problems();
    walkLeaves(readNode(m, 0, m.length, 'text/plain'), 0, { parts: 0 }, problems, (leaf) => {
      if (leaf.type === 'text/plain') out.push(partBody(leaf, problems));
      return true;
    });
  }
  return out;
}

const ENVELOPE_TOKENS = ['Sender: ', 'On-Behalf-Of: ', 'Subject: ', 'Message-Id: <', 'To: ', 'Cc: ', 'Bcc: ', 'Recipient: ', 'Recipients: ', 'SMTP:', ', Expanded: ', ', Forwarded: ', ', Expanded:', 'a@b', '<a@b>', '\r\n', '\n', '\r\n ', '\ufeff', ',', ';', ':', '"', ' '.repeat(70)];
const REPORT_TOKENS = [
  'X-MS-Journal-Report:\r\n', 'X-WM-Journal-Report: journal\r\n', 'Content-Type: multipart/mixed; boundary=b\r\n', 'Content-Type: multipart/report; boundary=r\r\n',
  'Content-Type: message/rfc822\r\n', 'Content-Type: message/global\r\n', 'Content-Type: application/ms-tnef\r\n', 'Content-Type: text/plain; charset=utf-16\r\n',
  'Content-Class: rpmsg.message\r\n', 'Content-Transfer-Encoding: base64\r\n', 'Content-Transfer-Encoding: quoted-printable\r\n', '\r\n--b\r\n', '\r\n--b--\r\n', '--r\r\n', '\r\n\r\n',
  ...ENVELOPE_TOKENS,
];
const CHARSETS: Array<string | undefined> = [undefined, 'us-ascii', 'utf-8', 'windows-1252', 'iso-8859-1', 'utf-16le', 'utf-16', 'iso-2022-jp', 'gb18030', 'x-bogus', ' UTF-8 '];
const SOURCES: HeaderSource[] = ['x-gm-original-to', 'x-original-to', 'delivered-to', 'envelope-to', 'x-envelope-to', 'x-rcpt-to', 'received-for', 'to-cc-from-guess'];

function checkEnvelope(env: ReturnType<typeof parseEnvelope>): void {
  const keys = new Set<string>();
  for (const r of env.recipients) {
    check(r.address.includes('@'), 'a recipient is an address', r.address);
    const key = `${r.field}\0${r.address}`;
    check(!keys.has(key), 'recipients are deduplicated by (address, field)', r);
    keys.add(key);
  }
  check(env.recipients.length <= 100_000, 'recipients are capped');
  for (const f of env.fields) check(f.value.length <= 64 * 1024 + 1024, 'logical lines are capped', f.value.length);
}

export const group: FuzzGroup = {
  group: 'journal',
  targets: [
    {
      name: 'journal.report',
      seeds: () => [...journalMessages(), ...messageSeeds().slice(0, 60).map((m) => Buffer.concat([Buffer.from('X-MS-Journal-Report:\r\n'), m]))],
      dictionary: REPORT_TOKENS,
      maxLength: 256 * 1024,
      run(input) {
        const r = parseJournalReport(input);
        if (r === null) return;
        check(r.kind === 'exchange' || r.kind === 'workmail', 'a known kind', r.kind);
        check(r.problems.length <= 101, 'problems are capped', r.problems.length);
        checkEnvelope(r.envelope);
        for (const o of r.originals) {
          check(Buffer.isBuffer(o.bytes), 'an original is bytes');
          check(o.bytes.length <= input.length, 'an original is no longer than the report', [o.bytes.length, input.length]);
        }
        check(r.originals.filter((o) => o.role === 'original').length <= 1, 'at most one original');
      },
    },
    {
      name: 'journal.envelope',
      seeds: () => [...envelopeParts(), ...nastyStrings().filter((b) => b.length < 200_000)],
      dictionary: ENVELOPE_TOKENS,
      maxLength: 128 * 1024,
      run(input) {
        for (const charset of CHARSETS) {
          const problems = new Problems();
          const text = decodeText(input, charset, problems);
          check(typeof text === 'string', 'decodeText gives text');
          checkEnvelope(parseEnvelope(text, problems));
          check(problems.list.length <= 101, 'problems are capped');
        }
      },
    },
    {
      name: 'journal.header-envelope',
      seeds: () => [...headerBlockSeeds(), ...journalMessages()],
      dictionary: ['Delivered-To: ', 'X-Original-To: ', 'Envelope-To: ', 'X-Envelope-To: ', 'X-Rcpt-To: ', 'X-Gm-Original-To: ', 'Return-Path: <>', 'Received: from a by mx.example.com for <a@b>; date\r\n', ' for ', ' by ', ' id ', ' with ', 'mx.example.com.', '(comment', ')', ';', '<a@b>', ',', '\r\n\t'],
      run(input) {
        const headers = parseHeaderBlock(input);
        const orders = [SOURCES, [...SOURCES].reverse(), ['received-for' as const], ['delivered-to' as const]];
        for (const [i, sources] of orders.entries()) {
          const env = headerEnvelope(headers, { sources, deliveredToSkip: i, trustedReceivedHosts: ['.example.com', 'mx.example.org', '', '.'] });
          check(new Set(env.recipients).size === env.recipients.length, 'recipients are deduplicated', env.recipients);
          check(env.recipients.length <= 10_000, 'recipients are capped');
          check((env.source === null) === (env.recipients.length === 0), 'a source is named exactly when recipients were found', env);
          for (const a of env.recipients) check(a.includes('@'), 'a recipient is an address', a);
          check(env.sender === null || env.sender.includes('@'), 'the sender is an address or null', env.sender);
        }
        for (const value of headerValues(headers, 'received')) {
          const info = parseReceived(value);
          check(info.by === null || info.by.length > 0, 'a "by" host is non-empty');
        }
      },
    },
  ],
};
