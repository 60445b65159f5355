// Client command syntax, AUTH PLAIN identity decoding and CAPA reconciliation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePlainIdentity, parseCommand } from '../../../core/pop3/commands.ts';
import { reconcileCapa } from '../../../core/pop3/capa.ts';
import { isLoopbackAddress } from '../../../core/config/host-port.ts';

const parse = (s: string) => parseCommand(Buffer.from(s, 'latin1'));

test('well-formed commands parse to a canonical line', () => {
  assert.deepEqual(parse('retr 12'), { verb: 'RETR', args: '12', numbers: [12], line: 'RETR 12' });
  assert.deepEqual(parse('top 3 0'), { verb: 'TOP', args: '3 0', numbers: [3, 0], line: 'TOP 3 0' });
  assert.deepEqual(parse('LIST'), { verb: 'LIST', args: '', numbers: [], line: 'LIST' });
  assert.deepEqual(parse('PASS with spaces inside'), { verb: 'PASS', args: 'with spaces inside', numbers: [], line: 'PASS with spaces inside' });
  assert.deepEqual(parse('AUTH PLAIN AGFsaWNlAHB3'), { verb: 'AUTH', args: 'PLAIN AGFsaWNlAHB3', numbers: [], line: 'AUTH PLAIN AGFsaWNlAHB3' });
  const utf8 = Buffer.from('PASS p\u00e4ss', 'utf8').toString('latin1');
  assert.deepEqual(parse(utf8), { verb: 'PASS', args: utf8.slice(5), numbers: [], line: utf8 });
  assert.equal((parse('APOP alice c4c9334bac560ecc979e58001b3e22fb') as { verb: string }).verb, 'APOP');
});

test('malformed commands give a -ERR text', () => {
  const cases: Array<[string, string]> = [
    ['', '-ERR Invalid command syntax'],
    ['RETR\u00e9 1', '-ERR Invalid command syntax'],
    ['RETR 1\u00e9', '-ERR Invalid characters in command'],
    ['AUTH PLAIN \u00e9', '-ERR Invalid characters in command'],
    ['RETR 1\u0000', '-ERR Invalid characters in command'],
    ['XTND XMIT', '-ERR Unknown command'],
    ['RETR', '-ERR Syntax: RETR message-number'],
    ['RETR 0', '-ERR Syntax: RETR message-number'],
    ['RETR -1', '-ERR Syntax: RETR message-number'],
    ['RETR 12345678901', '-ERR Syntax: RETR message-number'],
    ['TOP 1 2 3', '-ERR Syntax: TOP message-number lines'],
    ['UIDL x', '-ERR Syntax: UIDL [message-number]'],
    ['QUIT now', '-ERR Syntax: QUIT takes no argument'],
    ['APOP alice short', '-ERR Syntax: APOP name digest'],
    ['AUTH PLAIN not*base64', '-ERR Syntax: AUTH mechanism [initial-response]'],
    ['PASS', '-ERR Syntax: PASS password'],
  ];
  for (const [line, error] of cases) assert.deepEqual(parse(line), { error }, line);
});

test('AUTH PLAIN identity: authzid, else authcid; invalid responses give null', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  assert.equal(decodePlainIdentity(b64('\0alice\0pw')), 'alice');
  assert.equal(decodePlainIdentity(b64('boss\0alice\0pw')), 'boss');
  assert.equal(decodePlainIdentity(b64('alice\0pw')), null);
  assert.equal(decodePlainIdentity('*'), null);
  assert.equal(decodePlainIdentity(''), null);
});

test('CAPA keeps relayed capabilities, adds STLS, narrows SASL, and hides credentials when not allowed', () => {
  const upstream = ['TOP', 'UIDL', 'PIPELINING', 'STLS', 'USER', 'SASL LOGIN PLAIN CRAM-MD5', 'RESP-CODES', 'EXPIRE 30', 'UTF8', 'X-FOO'];
  assert.deepEqual(reconcileCapa(upstream, { stls: true, plaintextAuth: true }),
    ['TOP', 'UIDL', 'RESP-CODES', 'EXPIRE 30', 'STLS', 'USER', 'SASL PLAIN', 'IMPLEMENTATION Postern']);
  assert.deepEqual(reconcileCapa(upstream, { stls: true, plaintextAuth: false }),
    ['TOP', 'UIDL', 'RESP-CODES', 'EXPIRE 30', 'STLS', 'IMPLEMENTATION Postern']);
  assert.deepEqual(reconcileCapa(['SASL CRAM-MD5'], { stls: false, plaintextAuth: true }), ['IMPLEMENTATION Postern']);
  assert.deepEqual(reconcileCapa(null, { stls: false, plaintextAuth: true }), ['USER', 'IMPLEMENTATION Postern']);
});

test('loopback clients count as secure for plaintext credentials', () => {
  for (const a of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '', 'fe80::1']) assert.ok(!isLoopbackAddress(a), a);
});

test('recent captures are per owner and bounded, oldest forgotten first', async () => {
  const { RecentCaptures } = await import('../../../core/pop3/recent-captures.ts');
  const r = new RecentCaptures(2);
  r.add('alice', 'h1');
  assert.ok(r.has('alice', 'h1'));
  assert.ok(!r.has('bob', 'h1'));
  r.add('alice', 'h2');
  r.add('alice', 'h1');
  r.add('alice', 'h3');
  assert.ok(!r.has('alice', 'h2'), 'least recently added is dropped');
  assert.ok(r.has('alice', 'h1') && r.has('alice', 'h3'));
  assert.equal(r.size, 2);
});
