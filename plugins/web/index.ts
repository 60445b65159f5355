// web: read-only access to the archives in a browser (README "Web access"). One listener (plain HTTP on
// loopback, HTTPS with the IMAP plugin's certificate handling: configured PEM files or the generated
// development certificate, re-read on SIGHUP), sign-in with the archive credentials through the shared
// sign-in throttle, sessions in memory, server-rendered pages (search, folders, message view with the
// HTML body sanitised in a sandboxed frame, downloads, exports, legal holds) under the API's access
// rules. Adds the admin route behind `postern user web NAME on|off`, registers its port as listener
// `web`, and offers the `web` service (bound port, sessions, route table) to tests.
import type { Credentials } from '../../core/auth/credentials.ts';
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { definePlugin } from '../../core/app/plugin.ts';
import { errorMessage } from '../../core/errors.ts';
import { loadTls } from '../../core/tls/dev-certificate.ts';
import { isLoopback } from '../../core/config/host-port.ts';
import { webConfig, webEnv } from './config.ts';
import { SessionStore } from './sessions.ts';
import { WebServer } from './server.ts';
import { hasWebAccess } from './access.ts';
import { addWebRoutes } from './admin-routes.ts';
import { addAuthPages } from './pages-auth.ts';
import { addSearchPages } from './pages-search.ts';
import { addArchivePages } from './pages-archive.ts';
import { addMessagePages } from './pages-message.ts';
import { addExportPages } from './pages-export.ts';
import type { WebDeps } from './deps.ts';

export interface WebService {
  /** The bound port (0 in the config means a free port was picked). */
  port(): number;
  /** "http" or "https". */
  scheme(): 'http' | 'https';
  sessions(): number;
  /** The route table ("METHOD /path"). */
  routes(): { public: string[]; session: string[] };
}

declare module '../../core/app/services.ts' {
  interface Services {
    web: WebService;
  }
}

export default definePlugin({
  name: 'web',
  provides: ['web'],
  configSchema: webConfig,
  env: webEnv,
  async register(app, config) {
    const core = app.service('config');
    const archive = app.service('archive');
    const log = app.log;
    const hostname = core.smtp.hostname || osHostname();
    const sessions = new SessionStore({ idleMs: config.idleTimeoutMinutes * 60_000, absoluteMs: config.absoluteTimeoutHours * 3_600_000, max: config.maxSessions });
    const tls = config.tls.enabled ? await loadTls(config.tls, core.dataDir, hostname, log) : null;
    if (tls?.selfSigned && !isLoopback(config.host)) log.warn('The web access listens beyond loopback with the generated development certificate; configure tls.cert and tls.key', { host: config.host });
    const asset = (name: string): Buffer => readFileSync(new URL(`./assets/${name}`, import.meta.url));
    const server = new WebServer({
      host: config.host, port: config.port, maxConnections: config.maxConnections, archive, sessions, accessGroups: config.accessGroups, log,
      assets: new Map([['/assets/web.css', { type: 'text/css; charset=utf-8', body: asset('web.css') }]]),
    }, tls);
    const exportsService = app.optionalService('exports');
    const searchService = app.optionalService('search');
    const deps: WebDeps = {
      config, archive, sessions, server, log,
      hooks: app.service('hooks'),
      signIn: { archive, throttle: app.service('signIn'), hooks: app.service('hooks'), metrics: app.service('metrics'), log, accessGroups: () => config.accessGroups, ...credentialsOf(app.optionalService('credentials')) },
      search: searchService,
      exports: exportsService,
      audit: () => app.service('audit'),
      selection: {
        archive, search: searchService,
        addressRules: { localPartCase: core.routing.localPartCase, subaddressSeparator: core.routing.subaddressSeparator },
        folders: { received: core.routing.receivedFolder, sent: core.routing.sentFolder },
      },
      previewBlocking: core.compliance.previewBlocking,
      unmatchedUser: core.routing.unmatchedUser,
    };
    addAuthPages(deps);
    addSearchPages(deps);
    addArchivePages(deps);
    addMessagePages(deps);
    addExportPages(deps);
    addWebRoutes(app.service('adminRoutes'), archive, log, (user) => sessions.endUser(user));
    app.on('userChanged', ({ before, after }) => {
      if (!hasWebAccess(after, config.accessGroups)) sessions.endUser(after.name);
      // A renamed user signs in again: a session must not pass to someone later given the old name.
      if (before && before.name !== after.name) sessions.endUser(before.name);
    });

    const port = await server.listen();
    app.service('listeners').set('web', port);
    log.info('Web access listening', { host: config.host, port, tls: tls !== null });
    const sweeper = setInterval(() => sessions.sweep(), 60_000);
    sweeper.unref();
    const tlsReload = app.service('tlsReload');
    if (config.tls.enabled) tlsReload.register('web', config.tls, hostname, (m) => server.setTls(m));
    app.decorate('web', { port: () => port, scheme: () => (tls ? 'https' : 'http'), sessions: () => sessions.size, routes: () => server.routes() });
    app.onClose(async () => {
      tlsReload.unregister('web');
      clearInterval(sweeper);
      await server.close();
    });
  },
});

/** The shared password check when the app has one (it always does under `postern serve`). */
function credentialsOf(get: () => Credentials | null): { credentials?: Credentials } {
  const c = get();
  return c ? { credentials: c } : {};
}
