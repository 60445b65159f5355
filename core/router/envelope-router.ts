// The built-in router: files a message into the archive of every known user among its SMTP envelope
// recipients (received folder) and of the known envelope sender (sent folder). Registered on the
// `route` hook like any plugin, so journal-report and header routing extend the same hook.
import { z } from 'zod';
import { definePlugin } from '../app/plugin.ts';
import type { Route } from '../app/hook-types.ts';

export const envelopeRouterConfig = z.strictObject({
  receivedFolder: z.string().min(1),
  sentFolder: z.string().min(1),
});

export default definePlugin({
  name: 'envelope-router',
  configSchema: envelopeRouterConfig,
  register(app, config) {
    const archive = app.service('archive');
    app.on('route', async ({ context }) => {
      const routes: Route[] = [];
      for (const rcpt of context.envelope.rcptTo) {
        const user = await archive.userByAddress(rcpt);
        if (user) routes.push({ user, folder: config.receivedFolder, reason: 'envelope rcpt' });
      }
      if (context.envelope.mailFrom) {
        const user = await archive.userByAddress(context.envelope.mailFrom);
        if (user) routes.push({ user, folder: config.sentFolder, reason: 'envelope sender' });
      }
      return routes;
    });
  },
});
