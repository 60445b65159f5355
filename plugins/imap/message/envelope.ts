// Builds the IMAP ENVELOPE (RFC 3501 7.4.2) of a message or an encapsulated message from its header.
// Trusts only core/mime/headers.ts's unfolded fields; values are used raw (encoded words stay encoded,
// as clients expect). Hands on the serialized ENVELOPE string.
import type { HeaderField } from '../../../core/mime/headers.ts';
import { parseAddressList, type ImapAddress } from './address-list.ts';
import { humanNstring, nstring } from './imap-string.ts';

function first(fields: HeaderField[], name: string): string | null {
  for (const f of fields) if (f.name.toLowerCase() === name) return f.value;
  return null;
}

function addresses(list: ImapAddress[]): string {
  if (list.length === 0) return 'NIL';
  return `(${list.map((a) => `(${humanNstring(a.name)} ${nstring(a.adl)} ${nstring(a.mailbox)} ${nstring(a.host)})`).join('')})`;
}

/** Every occurrence of an address field counts (a message may repeat Cc:), as Dovecot reads them. */
function addressField(fields: HeaderField[], name: string): ImapAddress[] {
  const all = fields.filter((f) => f.name.toLowerCase() === name).map((f) => f.value);
  return all.length === 0 ? [] : parseAddressList(all.join(','));
}

/** A header value, NIL when absent. */
function text(fields: HeaderField[], name: string): string {
  return nstring(first(fields, name));
}

export function buildEnvelope(fields: HeaderField[]): string {
  const from = addressField(fields, 'from');
  const sender = addressField(fields, 'sender');
  const replyTo = addressField(fields, 'reply-to');
  return `(${[
    text(fields, 'date'),
    humanNstring(first(fields, 'subject')),
    addresses(from),
    addresses(sender.length > 0 ? sender : from),
    addresses(replyTo.length > 0 ? replyTo : from),
    addresses(addressField(fields, 'to')),
    addresses(addressField(fields, 'cc')),
    addresses(addressField(fields, 'bcc')),
    text(fields, 'in-reply-to'),
    text(fields, 'message-id'),
  ].join(' ')})`;
}
