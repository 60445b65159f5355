// client-access: accept SMTP connections only from configured networks (like Postfix's mynetworks),
// so a journaling endpoint takes mail only from the MTAs that should journal to it. Connect gate.
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { definePlugin } from '../../core/app/plugin.ts';
import { verdict } from '../../core/app/verdict.ts';

const cidr = z.string().refine((s) => {
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !addr || isIP(addr) === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (isIP(addr) === 4 ? 32 : 128);
}, 'must be an IP address or CIDR network such as 192.0.2.0/24');

export const clientAccessConfig = z.strictObject({
  /** Networks allowed to connect. */
  allow: z.array(cidr).min(1),
  /** The reply to everyone else. */
  rejectCode: z.union([z.literal(421), z.literal(550), z.literal(554)]).default(554),
  rejectText: z.string().default('5.7.1 Client host is not allowed to use this journaling endpoint'),
});

export function buildBlockList(networks: string[]): BlockList {
  const list = new BlockList();
  for (const n of networks) {
    const [addr, bits] = n.split('/') as [string, string | undefined];
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

export default definePlugin({
  name: 'client-access',
  configSchema: clientAccessConfig,
  register(app, config) {
    const allowed = buildBlockList(config.allow);
    app.on('connect', ({ session }, { log }) => {
      const addr = session.remoteAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (allowed.check(addr, type)) return undefined;
      log.warn('Connection from a host outside the allowed networks refused', { remote: addr });
      return config.rejectCode === 421 ? verdict.disconnect(421, config.rejectText.replace(/^5/, '4')) : verdict.reject(config.rejectCode, config.rejectText);
    });
  },
});
