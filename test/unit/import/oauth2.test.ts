// OAuth2 tokens for IMAP sources against a local token endpoint: the client-credentials grant (secret
// from a file or variable), one token per application cached until shortly before expiry, a Google
// service-account JWT signed with the key file (verified by the endpoint with the public key) per
// mailbox, and failures that name the endpoint but never the secret or a token.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuth2Tokens, oauth2Schema, type OAuth2Options } from '../../../core/import/oauth2.ts';

type ClientCredentials = Extract<OAuth2Options, { flow: 'client-credentials' }>;

const dir = mkdtempSync(join(tmpdir(), 'postern-oauth2-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(join(dir, 'secret'), 'client-s3cret\n');
writeFileSync(join(dir, 'key.json'), JSON.stringify({ client_email: 'svc@project.iam', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) }));

let issued = 0;
const grants: Array<Record<string, string>> = [];
const body = async (req: IncomingMessage): Promise<string> => {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  return Buffer.concat(parts).toString();
};
const server = createServer((req, res) => {
  void body(req).then((text) => {
    const form = Object.fromEntries(new URLSearchParams(text));
    grants.push(form);
    const reply = (status: number, json: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (req.url === '/garbage') return reply(200, { token_type: 'Bearer' });
    if (form.grant_type === 'client_credentials') {
      if (form.client_secret !== 'client-s3cret') return reply(401, { error: 'invalid_client', error_description: `bad secret ${form.client_secret}` });
      return reply(200, { access_token: `app-token-${++issued}`, token_type: 'Bearer', expires_in: 3600 });
    }
    const [h, c, sig] = (form.assertion ?? '').split('.');
    const ok = createVerify('RSA-SHA256').update(`${h}.${c}`).verify(publicKey, Buffer.from(sig ?? '', 'base64url'));
    if (!ok) return reply(400, { error: 'invalid_grant' });
    const claims = JSON.parse(Buffer.from(c ?? '', 'base64url').toString()) as { sub: string; iss: string };
    return reply(200, { access_token: `sa-${claims.iss}-${claims.sub}-${++issued}`, expires_in: 3600 });
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
after(() => server.close());
const port = (server.address() as { port: number }).port;
const url = (path = '/token'): string => `http://127.0.0.1:${port}${path}`;

test('client credentials: one token for every mailbox, reused until a minute before expiry, then fetched again', async () => {
  let clock = 1_000_000;
  const tokens = new OAuth2Tokens(() => clock);
  const o: ClientCredentials = { flow: 'client-credentials', tokenUrl: url(), clientId: 'app-1', clientSecretFile: join(dir, 'secret'), scope: 'imap' };
  assert.deepEqual(oauth2Schema.parse(o), o);
  const first = await tokens.get(o, 'alice@example.test');
  assert.match(first, /^app-token-\d+$/);
  assert.equal(await tokens.get(o, 'bob@example.test'), first, 'the application token serves every mailbox');
  assert.deepEqual(grants.at(-1), { grant_type: 'client_credentials', client_id: 'app-1', client_secret: 'client-s3cret', scope: 'imap' });
  clock += 3_539_000;
  assert.equal(await tokens.get(o, 'alice@example.test'), first, '61 s before expiry: still cached');
  clock += 2_000;
  const second = await tokens.get(o, 'alice@example.test');
  assert.notEqual(second, first, '59 s before expiry: refreshed');
  const [a, b] = await Promise.all([tokens.get({ ...o, clientId: 'app-2' }, 'x'), tokens.get({ ...o, clientId: 'app-2' }, 'y')]);
  assert.equal(a, b, 'concurrent requests share one grant');
});

test('service account: a JWT signed with the key file, one token per mailbox', async () => {
  const tokens = new OAuth2Tokens();
  const o = oauth2Schema.parse({ flow: 'service-account', keyFile: join(dir, 'key.json'), tokenUrl: url() });
  const alice = await tokens.get(o, 'alice@example.test');
  assert.match(alice, /^sa-svc@project\.iam-alice@example\.test-\d+$/);
  assert.match(await tokens.get(o, 'bob@example.test'), /^sa-svc@project\.iam-bob@example\.test-/);
  assert.equal(await tokens.get(o, 'alice@example.test'), alice);
  assert.equal(grants.at(-1)?.grant_type, 'urn:ietf:params:oauth:grant-type:jwt-bearer');
});

test('failures name the endpoint and the OAuth2 error, never the secret', async () => {
  const tokens = new OAuth2Tokens();
  process.env.POSTERN_TEST_WRONG_SECRET = 'wr0ng-secret-value';
  const wrong: ClientCredentials = { flow: 'client-credentials', tokenUrl: url(), clientId: 'app', clientSecretEnv: 'POSTERN_TEST_WRONG_SECRET', scope: 's' };
  await assert.rejects(tokens.get(wrong, 'a'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'OAUTH2_FAILED');
    assert.match(err.message, /refused the client-credentials grant: invalid_client/);
    assert.ok(!err.message.includes('wr0ng'), err.message);
    return true;
  });
  await assert.rejects(tokens.get({ ...wrong, tokenUrl: url('/garbage') }, 'a'), /without a usable access_token/);
  await assert.rejects(tokens.get({ ...wrong, clientSecretEnv: 'POSTERN_TEST_UNSET_VARIABLE' }, 'a'), /"POSTERN_TEST_UNSET_VARIABLE" .* is not set/);
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  await assert.rejects(tokens.get({ ...wrong, tokenUrl: `http://127.0.0.1:${closedPort}/token` }, 'a'), /cannot be reached \(ECONNREFUSED\)/);
  assert.equal(oauth2Schema.safeParse({ flow: 'client-credentials', tokenUrl: url(), clientId: 'a', clientSecretEnv: 'A', clientSecretFile: '/x' }).success, false);
  assert.equal(oauth2Schema.safeParse({ flow: 'client-credentials', tokenUrl: 'ftp://x/', clientId: 'a', clientSecretEnv: 'A' }).success, false);
});
