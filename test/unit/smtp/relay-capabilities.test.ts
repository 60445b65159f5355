// Relay proxy pure parts: EHLO parsing and reconciliation, parameter forwarding, xtext, dot-stuffing
// across chunk boundaries, and the upstream endpoint derived from the config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeXtext, mailParams, parseEhlo, rcptParams, reconcileFeatures, NO_CAPABILITIES } from '../../../core/smtp/relay-capabilities.ts';
import { DotStuffer } from '../../../core/smtp/relay-upstream.ts';
import { relayUpstreamConfig } from '../../../core/smtp/relay-setup.ts';
import { defaultConfig } from '../../../core/config/schema.ts';
import { isPosternError } from '../../../core/errors.ts';

const POSTFIX_EHLO = ['mx.example Hello', 'PIPELINING', 'SIZE 10240000', 'VRFY', 'ETRN', 'STARTTLS', 'AUTH PLAIN LOGIN CRAM-MD5', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING'];
const OURS = ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'DSN', 'AUTH PLAIN LOGIN', 'STARTTLS', 'REQUIRETLS', 'SIZE 52428800'];

test('parseEhlo reads the extensions that matter and ignores the greeting line', () => {
  const caps = parseEhlo(POSTFIX_EHLO);
  assert.deepEqual(caps, { esmtp: true, size: 10240000, eightBitMime: true, smtpUtf8: true, dsn: true, pipelining: true, starttls: true, auth: ['PLAIN', 'LOGIN', 'CRAM-MD5'] });
  assert.equal(parseEhlo(['x', 'SIZE']).size, 0, 'SIZE without a number means no announced limit');
  assert.equal(parseEhlo(['x', 'SIZE lots']).size, 0, 'a malformed SIZE is treated as no limit');
  assert.deepEqual(parseEhlo(['x', 'AUTH PLAIN', 'AUTH=LOGIN', 'AUTH bad;mech']).auth, ['PLAIN']);
  assert.equal(parseEhlo(['SIZE 5']).size, null, 'the first line is the greeting, never an extension');
});

test('reconcileFeatures advertises only what both ends can do', () => {
  const full = reconcileFeatures(OURS, parseEhlo(POSTFIX_EHLO), { maxMessageSize: 52428800, authMode: 'passthrough' });
  assert.deepEqual(full, ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'DSN', 'AUTH PLAIN LOGIN', 'STARTTLS', 'SIZE 10240000']);
  const bare = reconcileFeatures(OURS, parseEhlo(['sink', 'PIPELINING']), { maxMessageSize: 1000, authMode: 'passthrough' });
  assert.deepEqual(bare, ['PIPELINING', 'STARTTLS', 'SIZE 1000'], 'no 8BITMIME/SMTPUTF8/DSN/AUTH the upstream lacks; our SIZE without an upstream one');
  const smaller = reconcileFeatures(['SIZE 100'], parseEhlo(['x', 'SIZE 5000']), { maxMessageSize: 100, authMode: 'none' });
  assert.deepEqual(smaller, ['SIZE 100'], 'SIZE is the minimum');
  const local = reconcileFeatures(['AUTH PLAIN LOGIN'], NO_CAPABILITIES, { maxMessageSize: 1, authMode: 'local' });
  assert.deepEqual(local, ['AUTH PLAIN LOGIN'], 'local AUTH does not depend on the upstream');
  assert.deepEqual(reconcileFeatures(['AUTH PLAIN LOGIN'], parseEhlo(['x', 'AUTH CRAM-MD5']), { maxMessageSize: 1, authMode: 'passthrough' }), [],
    'passthrough needs a mechanism that carries the password');
  assert.deepEqual(reconcileFeatures(['CHUNKING', 'BINARYMIME', 'XCLIENT NAME', 'X-FOO'], parseEhlo(POSTFIX_EHLO), { maxMessageSize: 1, authMode: 'none' }), []);
});

test('MAIL FROM and RCPT TO parameters are forwarded only when the upstream has the extension', () => {
  const caps = parseEhlo(POSTFIX_EHLO);
  assert.deepEqual(mailParams({ SIZE: '1234', BODY: '8BITMIME', SMTPUTF8: true, RET: 'HDRS', ENVID: 'id+x=1 é', AUTH: '<>', REQUIRETLS: true }, caps), {
    text: 'SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2Bx+3D1+20+C3+A9', dropped: ['AUTH', 'REQUIRETLS'],
  });
  const bare = parseEhlo(['sink']);
  assert.deepEqual(mailParams({ SIZE: '1', BODY: '8BITMIME', SMTPUTF8: true, RET: 'FULL' }, bare), { text: '', dropped: ['SIZE', 'BODY', 'SMTPUTF8', 'RET'] });
  assert.deepEqual(mailParams({ SIZE: '12x' }, caps).dropped, ['SIZE'], 'a malformed SIZE is not forwarded');
  assert.deepEqual(mailParams(false, caps), { text: '', dropped: [] });
  assert.deepEqual(rcptParams({ NOTIFY: 'SUCCESS,FAILURE', ORCPT: 'rfc822;a+b@example.test', XFOO: 'y' }, caps), {
    text: 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.test', dropped: ['XFOO'],
  });
  assert.deepEqual(rcptParams({ NOTIFY: 'NEVER' }, bare), { text: '', dropped: ['NOTIFY'] });
});

test('encodeXtext encodes +, = and everything outside printable ASCII', () => {
  assert.equal(encodeXtext('plain'), 'plain');
  assert.equal(encodeXtext('a+b=c d\r\n'), 'a+2Bb+3Dc+20d+0D+0A');
});

test('DotStuffer doubles leading dots across chunk boundaries and ends the data correctly', () => {
  const run = (chunks: string[]): string => {
    const s = new DotStuffer();
    const out = chunks.map((c) => s.stuff(Buffer.from(c, 'latin1')).toString('latin1')).join('');
    return out + s.terminator().toString('latin1');
  };
  assert.equal(run(['.a\r\nb\r\n.\r\n']), '..a\r\nb\r\n..\r\n.\r\n');
  assert.equal(run(['x\r', '\n', '.y\r\n']), 'x\r\n..y\r\n.\r\n', 'a dot right after a chunk ending in LF');
  assert.equal(run(['x\r\n', '.', '.\r\n']), 'x\r\n...\r\n.\r\n');
  assert.equal(run(['no final newline']), 'no final newline\r\n.\r\n');
  assert.equal(run([]), '.\r\n', 'an empty message');
  assert.equal(run(['a.b\r\n', 'c.\r\n']), 'a.b\r\nc.\r\n.\r\n', 'dots inside lines stay');
});

test('relayUpstreamConfig: host:port, TLS auto by loopback, bad values refused', () => {
  const relay = defaultConfig().relay;
  assert.equal(relayUpstreamConfig(relay, 'me'), null, 'empty upstream = relay off');
  const local = relayUpstreamConfig({ ...relay, upstream: '127.0.0.1:2525' }, 'me');
  assert.equal(local?.starttls, false);
  assert.equal(local?.implicitTls, false);
  const remote = relayUpstreamConfig({ ...relay, upstream: 'smtp.example.com:587' }, 'me');
  assert.equal(remote?.starttls, true, 'auto = STARTTLS required off loopback');
  assert.equal(remote?.host, 'smtp.example.com');
  const v6 = relayUpstreamConfig({ ...relay, upstream: '[::1]:465', upstreamTls: 'implicit', upstreamTlsVerify: false }, 'me');
  assert.equal(v6?.host, '::1');
  assert.equal(v6?.implicitTls, true);
  assert.equal(v6?.tls.rejectUnauthorized, false);
  assert.throws(() => relayUpstreamConfig({ ...relay, upstream: 'host:99999' }, 'me'), (e: unknown) => isPosternError(e, 'CONFIG_INVALID'));
  assert.throws(() => relayUpstreamConfig({ ...relay, upstream: 'h:25', upstreamCa: '/nonexistent/ca.pem' }, 'me'), /cannot be read/);
});
