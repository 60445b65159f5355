// SMTP AUTH on the journaling endpoint: required mode refuses unauthenticated mail, credentials are
// scrypt hashes from the config, AUTH is accepted only after STARTTLS unless allowInsecure is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpClient, sendMail } from '../helpers/smtp-client.ts';
import { startTestServer } from '../helpers/test-server.ts';
import { hashPassword, verifyPassword } from '../../core/smtp/password.ts';

const plain = (user: string, pass: string): string => Buffer.from(`\0${user}\0${pass}`).toString('base64');

test('password hashes verify only the right password', async () => {
  const h = await hashPassword('s3cret');
  assert.match(h, /^scrypt\$16384\$8\$1\$/);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('S3cret', h), false);
  assert.equal(await verifyPassword('s3cret', 'scrypt$1$1$1$x$y'), false);
});

test('AUTH required: MAIL before AUTH gets 530, bad password 535, good password sends', async () => {
  const hash = await hashPassword('journal-pass');
  const srv = await startTestServer((c) => {
    c.smtp.auth = { mode: 'required', users: { mta: hash }, allowInsecure: false };
  });
  try {
    const c = await SmtpClient.open(srv.smtpPort);
    await c.read();
    assert.equal((await c.cmd('EHLO mta.example')).code, 250);
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'journal-pass')}`)).code, 538, 'AUTH needs TLS first');
    await c.starttls();
    const ehlo2 = await c.cmd('EHLO mta.example');
    assert.ok(ehlo2.lines.some((l) => /AUTH .*PLAIN/.test(l)), ehlo2.text);
    assert.equal((await c.cmd('MAIL FROM:<a@else.org>')).code, 530);
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'wrong')}`)).code, 535);
    assert.ok(srv.logs.some((l) => l.msg === 'Authentication failed' && l.user === 'mta'));
    assert.ok(!JSON.stringify(srv.logs).includes('wrong'), 'the password never reaches the log');
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'journal-pass')}`)).code, 235);
    assert.equal((await sendMail(c, 'a@else.org', ['b@else.org'], 'Subject: authed\r\n\r\nx\r\n')).code, 250);
    c.close();
    await srv.settle();
    const [entry] = await srv.archive.listEntries('_unrouted', 'Inbox');
    assert.equal(entry?.subject, 'authed');
  } finally {
    await srv.stop();
  }
});

test('SMTP AUTH goes through the shared sign-in throttle: past the burst even the right password is refused with 454, unchecked', async () => {
  const hash = await hashPassword('journal-pass');
  const srv = await startTestServer((c) => {
    c.smtp.auth = { mode: 'required', users: { mta: hash }, allowInsecure: true };
    c.signIn = { ...c.signIn, burst: 2, addressBurst: 100, baseDelayMs: 60000, maxDelayMs: 60000, maxWaitMs: 100 };
  });
  try {
    const c = await SmtpClient.open(srv.smtpPort);
    await c.read();
    assert.equal((await c.cmd('EHLO mta.example')).code, 250);
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'guess1')}`)).code, 535);
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'guess2')}`)).code, 535);
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'guess3')}`)).code, 454, 'throttled');
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('mta', 'journal-pass')}`)).code, 454, 'the right password is not even checked while throttled');
    assert.ok(srv.logs.some((l) => l.msg === 'Authentication throttled' && l.user === 'mta'));
    c.close();
  } finally {
    await srv.stop();
  }
});
