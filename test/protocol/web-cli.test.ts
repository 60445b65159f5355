// `postern user web NAME on|off` against a live server with the web plugin: switches the user's web access
// (shown by `user show` as "Web: on|off"), after which the user can sign in to the web access (and not
// any more once it is off); a bad state or an unknown user fails with the reason.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.ts';
import { startWebServer, type WebTestServer } from './web-client.ts';

describe('postern user web', () => {
  let s: WebTestServer;
  before(async () => {
    s = await startWebServer([{ name: 'nora', addresses: ['nora@example.com'], web: false }], { search: false });
  });
  after(async () => {
    await s.stop();
  });

  it('switches web access on and off for a user', async () => {
    assert.equal((await s.client().signIn('nora')).status, 401);
    const on = await runCli(['user', 'web', 'nora', 'on'], s);
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, 'Web access enabled for nora\n');
    const show = await runCli(['user', 'show', 'nora'], s);
    assert.match(show.stdout, /^Web: {7}on$/m);
    const c = s.client();
    assert.equal((await c.signIn('nora')).status, 303);
    const off = await runCli(['user', 'web', 'nora', 'off'], s);
    assert.equal(off.stdout, 'Web access disabled for nora\n');
    assert.equal((await c.get('/archives')).status, 401, 'the open session ended');
    assert.match((await runCli(['user', 'show', 'nora'], s)).stdout, /^Web: {7}off$/m);
    const bad = await runCli(['user', 'web', 'nora', 'maybe'], s);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /State must be "on" or "off", not "maybe"/);
    const unknown = await runCli(['user', 'web', 'nobody', 'on'], s);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /User "nobody" does not exist/);
  });
});
