import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpClient } from '../../helpers/smtp-client.ts';
import { startTestServer } from '../../helpers/test-server.ts';
import { buildBlockList, clientAccessConfig } from '../../../plugins/client-access/index.ts';

test('client-access config accepts addresses and CIDRs and refuses garbage', () => {
  assert.equal(clientAccessConfig.safeParse({ allow: ['127.0.0.0/8', '::1', '2001:db8::/32'] }).success, true);
  for (const bad of ['127.0.0.0/33', 'example.com', '10.0.0.1/8/1', '::/129']) {
    assert.equal(clientAccessConfig.safeParse({ allow: [bad] }).success, false, bad);
  }
  const list = buildBlockList(['192.0.2.0/24', '::1']);
  assert.equal(list.check('192.0.2.77', 'ipv4'), true);
  assert.equal(list.check('192.0.3.1', 'ipv4'), false);
  assert.equal(list.check('::1', 'ipv6'), true);
});

test('a connection from outside the allowed networks gets 554 and is logged; an allowed one is greeted', async () => {
  for (const [allow, code] of [[['192.0.2.0/24'], 554], [['127.0.0.0/8'], 220]] as const) {
    const srv = await startTestServer((c) => { c.plugins = [{ name: 'client-access', config: { allow: [...allow] } }]; });
    try {
      const c = await SmtpClient.open(srv.smtpPort);
      assert.equal((await c.read()).code, code);
      c.close();
      if (code === 554) assert.ok(srv.logs.some((l) => l.msg === 'Connection from a host outside the allowed networks refused' && l.plugin === 'client-access'));
    } finally {
      await srv.stop();
    }
  }
});
