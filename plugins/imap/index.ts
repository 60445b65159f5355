// imap: read-only IMAP4rev1 access to the archives. On the `index` hook it computes ENVELOPE, BODY,
// BODYSTRUCTURE and the part index once per new message (stored with the message); on `stored` it
// wakes sessions that have the folder selected (IDLE/NOOP announce * n EXISTS). It runs the STARTTLS
// and implicit-TLS listeners (certificate reloaded on SIGHUP), adds the admin routes that set archive
// passwords and IMAP access (with the provisioning notification mail), offers the `imap` service (listening ports) to tests, and registers its ports as `imap`/`imaps` listeners for status.
import type { Credentials } from '../../core/auth/credentials.ts';
import { hostname as osHostname } from 'node:os';
import { definePlugin } from '../../core/app/plugin.ts';
import { errorMessage } from '../../core/errors.ts';
import { loadTls } from '../../core/tls/dev-certificate.ts';
import { imapConfig, imapEnv } from './config.ts';
import { FolderIndexes } from './folder-index.ts';
import { MessageStore } from './message-store.ts';
import { ImapServer, type ImapPorts } from './server.ts';
import { addImapRoutes } from './admin-routes.ts';
import { buildMessage, renderTemplate, sendMail } from './notify.ts';
import type { UserRecord } from '../../core/storage/types.ts';

export interface ImapService {
  /** The bound ports (0 in the config means a free port was picked). */
  ports(): ImapPorts;
  connections(): number;
}

declare module '../../core/app/services.ts' {
  interface Services {
    imap: ImapService;
  }
}

export default definePlugin({
  name: 'imap',
  provides: ['imap'],
  configSchema: imapConfig,
  env: imapEnv,
  async register(app, config) {
    const core = app.service('config');
    const archive = app.service('archive');
    const hooks = app.service('hooks');
    const metrics = app.service('metrics');
    const log = app.log;
    const hostname = core.smtp.hostname || osHostname();
    const indexes = new FolderIndexes(archive);

    // Computed in the analysis workers (analyzer.ts); a message whose analysis failed has none, and
    // FETCH computes it on first use as for messages archived before the plugin was enabled.
    app.analyzer({ module: new URL('./analyzer.ts', import.meta.url).href });
    const analysis = app.service('analysis');
    app.on('index', ({ context }) => (context.analysis.imap ? { imap: context.analysis.imap } : undefined));
    app.on('stored', ({ entries }) => {
      indexes.added(entries);
    });
    // A shared archive (postgres-s3): mail archived by another node wakes this node's sessions too.
    archive.onForeignEntries?.((folders) => indexes.added(folders));
    let bound: ImapPorts = { port: null, tlsPort: null };
    const notifyAccess = async (user: UserRecord): Promise<string> => {
      if (!config.notify.enabled) return 'not sent (notify.enabled is false)';
      const to = user.addresses[0];
      if (!to) return 'not sent (the user has no address)';
      const body = renderTemplate(config.notify.template, {
        user: user.name, address: to, host: config.publicHost || hostname,
        port: String(bound.port ?? config.port ?? ''), tlsPort: String(bound.tlsPort ?? config.tlsPort ?? ''),
      });
      try {
        await sendMail(config.notify, hostname, to, buildMessage(config.notify.from, to, config.notify.subject, body, hostname));
        log.info('IMAP access notification sent', { user: user.name });
        return `sent to ${to}`;
      } catch (err) {
        log.warn('IMAP access notification failed', { user: user.name, err: errorMessage(err) });
        return `failed: ${errorMessage(err)}`;
      }
    };
    const hasAccess = (u: UserRecord | null): boolean => u !== null && (u.imapAccess || u.groups.some((g) => config.accessGroups.includes(g)));
    addImapRoutes(app.service('adminRoutes'), archive, log, 'imap', hasAccess, notifyAccess);
    // Access that arrives through a group (a user added with, or moved into, a group in accessGroups)
    // is announced the same way as a per-user switch.
    app.on('userChanged', async ({ before, after }) => {
      if (!hasAccess(before) && hasAccess(after)) await notifyAccess(after);
    });

    const material = await loadTls(config.tls, core.dataDir, hostname, log);
    const server = new ImapServer({
      config, archive, hooks, log, metrics, indexes,
      messages: new MessageStore(archive, config.cacheMessages, config.cacheBytes,
        (id, err) => log.warn('Storing recomputed IMAP data failed; it is recomputed on next use', { messageId: id, err: errorMessage(err) }),
        (bytes) => analysis.analyzeWith('imap', bytes),
        (id, err) => log.warn('IMAP data of a message cannot be computed; it is served as one text/plain part', { messageId: id, err: errorMessage(err) })),
      signIn: app.service('signIn'),
      ...credentialsOf(app.optionalService('credentials')),
      receivedFolder: core.routing.receivedFolder,
      sentFolder: core.routing.sentFolder,
      search: app.optionalService('search'),
    }, material);
    const ports = await server.listen();
    bound = ports;
    const listeners = app.service('listeners');
    listeners.set('imap', ports.port);
    listeners.set('imaps', ports.tlsPort);
    log.info('IMAP listening', { host: config.host, port: ports.port, tlsPort: ports.tlsPort, allowPlaintext: config.allowPlaintext });

    const tlsReload = app.service('tlsReload');
    tlsReload.register('imap', config.tls, hostname, (m) => server.setTls(m));
    app.decorate('imap', { ports: () => server.addresses(), connections: () => server.connections });
    app.onClose(async () => {
      tlsReload.unregister('imap');
      await server.close();
    });
  },
});

/** The shared password check when the app has one (it always does under `postern serve`). */
function credentialsOf(get: () => Credentials | null): { credentials?: Credentials } {
  const c = get();
  return c ? { credentials: c } : {};
}
