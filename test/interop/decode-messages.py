# Decodes messages with Python's own email package (a parser independent of Postern and Dovecot), so
# the SEARCH parity test draws its needles from text neither server produced. Reads a JSON list of
# base64 messages on stdin, writes one JSON list of decoded views on stdout:
#   headers       [[name, decoded value]] of the top-level header (RFC 2047 decoded, 8-bit read as
#                 UTF-8 when valid, else latin-1)
#   texts         decoded text of every text/* part (transfer encoding and charset), nested messages too
#   part_headers  [[name, decoded value]] of MIME part headers, plus attachment file names
#   inner_headers [[name, decoded value]] of the headers of attached (message/rfc822) messages
#   date          [year, month, day] of the Date header in the zone it was written in, or null
import base64
import codecs
import email
import email.policy
import email.utils
import json
import sys
from email.header import decode_header, make_header


def text_of(raw):
    b = raw.encode('ascii', 'surrogateescape') if isinstance(raw, str) else bytes(raw)
    try:
        return b.decode('utf-8')
    except UnicodeDecodeError:
        return b.decode('latin-1')


def dec(raw):
    value = text_of(raw)
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def fields(part):
    return [[name, dec(value)] for name, value in part._headers]


def payload_text(part):
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ''
    charset = part.get_content_charset() or 'us-ascii'
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        charset = 'latin-1'
    try:
        return data.decode(charset, errors='replace')
    except Exception:
        return data.decode('latin-1')


def walk(part, out, depth, root):
    if depth > 20:
        return
    if not root:
        out['part_headers'].extend(fields(part))
        try:
            name = part.get_filename()
        except Exception:
            name = None
        if name:
            out['part_headers'].append(['filename', dec(name)])
    if part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, email.message.Message):
                if part.get_content_type() == 'message/rfc822':
                    out['inner_headers'].extend(fields(child))
                    walk(child, out, depth + 1, True)
                else:
                    walk(child, out, depth + 1, False)
        return
    if part.get_content_maintype() == 'text':
        out['texts'].append(payload_text(part))


def date_of(msg):
    value = msg.get('Date')
    if value is None:
        return None
    try:
        t = email.utils.parsedate_tz(text_of(value))
    except Exception:
        return None
    if not t or not t[0] or not t[1] or not t[2]:
        return None
    return [t[0], t[1], t[2]]


def decode(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = {'headers': fields(msg), 'texts': [], 'part_headers': [], 'inner_headers': [], 'date': date_of(msg)}
    walk(msg, out, 0, True)
    return out


def main():
    result = []
    for item in json.load(sys.stdin):
        try:
            result.append(decode(base64.b64decode(item)))
        except Exception as err:  # a message Python cannot read gives no needles, not a failure
            result.append({'headers': [], 'texts': [], 'part_headers': [], 'inner_headers': [], 'date': None, 'error': str(err)})
    json.dump(result, sys.stdout, ensure_ascii=True)


main()
