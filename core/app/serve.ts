// Boots the gateway: config → logger → storage → intake → plugins → queue manager → listeners, and
// shuts it down in the reverse order on SIGTERM/SIGINT (stop accepting, finish in-flight
// transactions, let the archiving window drain, flush, exit 0).
import { mkdirSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { RocksEngine } from '../storage/rocksdb-engine.ts';
import { createArchiveBackend } from '../storage/archive-backend.ts';
import { Cluster } from '../storage/cluster.ts';
import { archiveStoreOptions } from '../storage/archive-store-options.ts';
import { KvArchiveStore } from '../storage/kv-archive.ts';
import { StorageHealth } from '../storage/storage-health.ts';
import { Intake, type IntakeRecord } from '../intake/intake.ts';
import { QueueManager } from '../intake/queue-manager.ts';
import { createCaptureService } from '../intake/capture.ts';
import { AdminRoutes } from '../admin/routes.ts';
import { createArchiver } from '../pipeline/archive-message.ts';
import { AnalysisPool } from '../pipeline/analysis-pool.ts';
import { addIntakeRoutes } from '../intake/routes.ts';
import { SmtpReceiver } from '../smtp/receiver.ts';
import { startPop3Proxy } from '../pop3/start.ts';
import { recoverHeldEntries, startRelay } from '../smtp/relay-setup.ts';
import { AdminServer } from '../admin/server.ts';
import { isLoopback } from '../config/host-port.ts';
import { PosternError } from '../errors.ts';
import { ensureToken } from '../admin/token.ts';
import { setupApiSessions } from '../admin/sessions-setup.ts';
import { loadTls } from '../tls/dev-certificate.ts';
import { TlsReloader } from '../tls/reload.ts';
import { SystemdNotifier } from '../systemd/notify.ts';
import multidropRouter from '../router/multidrop-router.ts';
import { isPosternError } from '../errors.ts';
import { App } from './app.ts';
import { SignInThrottle } from '../auth/sign-in-throttle.ts';
import { installProcessGuard } from './process-guard.ts';
import { HookRegistry } from './hooks.ts';
import { setupJobs } from '../jobs/setup.ts';
import { blobSweepJobKind } from '../storage/blob-sweep-job.ts';
import { setupAudit } from '../audit/setup.ts';
import { setupCompliance } from '../compliance/setup.ts';
import { setupImport } from '../import/setup.ts';
import { setupBackup } from '../backup/setup.ts';
import { setupExport } from '../export/setup.ts';
import { setupDirectory } from '../directory/setup.ts';

export interface RunningServer {
  app: App;
  intake: Intake;
  queue: QueueManager;
  smtpPort: number | null;
  pop3Port: number | null;
  pop3sPort: number | null;
  relayPort: number | null;
  adminPort: number;
  log: Logger;
  shutdown(reason: string): Promise<void>;
}

const VERSION = '0.1.0';

export async function startServer(loaded: LoadedConfig, options: { log?: Logger } = {}): Promise<RunningServer> {
  const { config } = loaded;
  const format = config.log.format === 'auto' ? (process.stderr.isTTY ? 'pretty' : 'json') : config.log.format;
  const log = options.log ?? createLogger({ level: config.log.level, format });
  const hostname = config.smtp.hostname || osHostname();
  if (!isLoopback(config.admin.host) && config.admin.tls.cert === '') {
    throw new PosternError('CONFIG_INVALID', `Admin API host "${config.admin.host}" is not loopback; configure admin.tls.cert and admin.tls.key to listen there`);
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const token = ensureToken(config.dataDir);
  const metrics = createMetrics({ dataDir: config.dataDir });

  // Tuning measured with `npm run bench:smtp`: a 64 MiB memtable lets most intake entries be deleted
  // before a flush ever writes them. RocksDB's own block compression is off in both databases: intake
  // data is short-lived, and archive blobs are already compressed by the blob codec.
  const storageHealth = new StorageHealth(metrics, log);
  const backend = await createArchiveBackend(config, {
    writeBufferSize: 64 * 1024 * 1024,
    compression: false,
    onGroupCommit: (callers) => metrics.groupCommitSize.observe({ store: 'archive' }, callers),
    ...storageHealth.events('archive'),
  }, {
    onPgError: (err) => log.warn('PostgreSQL archive error', { err: err.message }),
    onDeleteFailure: (sha256, err) => log.warn('An S3 object of a deleted blob stays until the orphan sweep', { sha256, err: err.message }),
  });
  const archiveEngine = backend.engine;
  const archive = new KvArchiveStore(archiveEngine, archiveStoreOptions(config, backend.kind));
  const intakeEngine = new RocksEngine(join(config.dataDir, 'intake'), {
    writeBufferSize: 64 * 1024 * 1024,
    compression: false,
    onGroupCommit: (callers) => metrics.groupCommitSize.observe({ store: 'intake' }, callers),
    ...storageHealth.events('intake'),
  });
  const intake = new Intake(intakeEngine, join(config.dataDir, 'intake'), config.intake.inlineMaxBytes, (seconds) => metrics.commitDuration.observe({ store: 'intake' }, seconds));

  const hooks = new HookRegistry(log, config.hooks.timeoutMs, {
    onError: (hook, _plugin, kind) => metrics.hookFailures.inc({ hook, kind }),
  });
  const app = new App(log, hooks);
  app.decorate('config', config);
  app.decorate('log', log);
  app.decorate('metrics', metrics);
  app.decorate('archive', archive);
  app.decorate('hooks', hooks);
  app.decorate('signIn', new SignInThrottle(config.signIn));
  app.decorate('storageHealth', storageHealth);
  // The pool starts once every plugin has registered its analyzer; plugins may hold the service earlier.
  let analysisPool: AnalysisPool | null = null;
  app.decorate('analysis', {
    analyzeWith: (plugin, bytes) => analysisPool?.analyzeWith(plugin, bytes) ?? Promise.reject(new PosternError('UNAVAILABLE', 'The analysis workers are not running yet')),
  });
  const adminRoutes = new AdminRoutes();
  app.decorate('adminRoutes', adminRoutes);
  const listenerPorts = new Map<string, number | null>();
  app.decorate('listeners', { set: (name, port) => void listenerPorts.set(name, port), all: () => Object.fromEntries(listenerPorts) });
  // Every TLS listener registers its certificate here; SIGHUP re-reads them all (core/tls/reload.ts).
  const tlsReload = new TlsReloader(config.dataDir, log);
  app.decorate('tlsReload', tlsReload);
  // The queue manager exists only after the plugins are loaded; captures wait for it (none can
  // arrive before listeners start, which is after the queue starts).
  let enqueue: (record: IntakeRecord, inline: Buffer | null) => void = () => {
    throw new PosternError('UNAVAILABLE', 'The archiving queue is not running yet');
  };
  app.decorate('capture', createCaptureService(intake, (record, inline) => enqueue(record, inline)));
  // A shared archive: this node's row in the cluster, and one run per scheduled slot cluster-wide.
  const cluster = backend.kind === 'postgres-s3'
    ? new Cluster(backend.engine.meta, backend.node, VERSION, (err) => log.warn('Cluster heartbeat failed', { err: err.message }))
    : null;
  const jobs = setupJobs(app, archive, cluster ? (job, slot) => cluster.claimSlot(job, slot) : undefined);
  setupImport(app);
  if (backend.kind === 'postgres-s3') app.service('jobs').registerKind(blobSweepJobKind(backend.engine, log.child({ component: 'blob-sweep' })));

  // A boot that fails half way (a bad job in the configuration) releases what it registered to close:
  // databases, analysis workers, what plugins opened; they do not keep the process (or a test) alive.
  try {
    await archive.open();
    app.onClose('core', () => archive.close());
    if (backend.kind === 'rocksdb') storageHealth.track('archive', backend.engine);
    const auditing = await setupAudit(app, archive, loaded.file);
    setupDirectory(app);
    const compliance = setupCompliance(app);
    const sessions = setupApiSessions(app);
    const exports = setupExport(app);
    if (!(await archive.getUser(config.routing.unmatchedUser))) {
      await archive.addUser({ name: config.routing.unmatchedUser, addresses: [] });
    }
    await seedUsers(archive, config.users, log);
    await app.register(multidropRouter, config.routing);
    await app.loadPlugins(config.plugins, loaded.where);

    const existing = await intake.open();
    app.onClose('core', () => intake.close());
    await setupBackup(app, {
      archive: archiveEngine, intake: intakeEngine, intakeStore: intake,
      ...(backend.kind !== 'rocksdb' ? { refuse: 'postern backup copies the embedded archive; a postgres-s3 archive is backed up by PostgreSQL (pg_basebackup and WAL archiving) and by the bucket\'s own versioning and replication (README: Scale-out backend)' } : {}),
    }, VERSION);
    storageHealth.track('intake', intakeEngine);
    metrics.setIntakeOldestSource(() => intake.oldestWaiting());
    const refreshIntakeGauges = (): void => {
      const c = intake.counts();
      metrics.intakeDepth.set(c.active + c.deferred);
      metrics.intakeDeferred.set(c.deferred);
      metrics.intakeCorrupt.set(c.corrupt);
      metrics.intakeQuarantined.set(c.corrupt);
    };
    const analysis = new AnalysisPool(app.analyzers, {
      workers: config.intake.analysisWorkers,
      timeoutMs: config.intake.analysisTimeoutSeconds * 1000,
      memoryMb: config.intake.analysisMemoryMb,
      onBudgetExceeded: (reason) => metrics.budgetExceeded.inc({ reason }),
      codec: config.storage.compression,
    }, log.child({ component: 'analysis' }));
    analysisPool = analysis;
    app.onClose('core', () => analysis.close());
    for (const r of intake.quarantinedAtOpen) {
      log.error(r.state === 'corrupt'
        ? 'Intake entry quarantined: it was being archived at consecutive unclean stops, also raw-only; its bytes are kept (postern intake retry)'
        : 'Intake entry was being archived at consecutive unclean stops: archiving it raw-only, then quarantining it (postern intake retry)', { intakeId: r.id, crashes: r.crashes });
    }
    const queue = new QueueManager(intake, createArchiver({
      archive, intake, hooks, log, metrics, analysis,
      unmatched: { user: config.routing.unmatchedUser, folder: config.routing.receivedFolder },
    }), config.intake, log, {
      onOutcome: (outcome, record) => {
        if (outcome !== 'archived') metrics.pipelineFailures.inc({ outcome });
        else metrics.archiveLag.observe(Math.max(0, (Date.now() - Date.parse(record.receivedAt)) / 1000));
        refreshIntakeGauges();
      },
    });
    queue.start(existing);
    addIntakeRoutes(adminRoutes, intake, (record) => enqueue(record, null), log);
    enqueue = (record, inline) => {
      queue.enqueue(record, inline);
      refreshIntakeGauges();
    };
    await recoverHeldEntries(intake, existing, (record) => enqueue(record, null), log);
    refreshIntakeGauges();
    await jobs.start([...config.jobs, ...auditing.jobs, ...compliance.jobs]);
    await exports.start();

    let ready = false;
    let smtp: SmtpReceiver | null = null;
    let smtpPort: number | null = null;
    if (config.smtp.enabled) {
      const tls = await loadTls(config.smtp.tls, config.dataDir, hostname, log);
      smtp = new SmtpReceiver({
        config: config.smtp, hostname, listener: 'smtp', tls, intake, hooks, log, metrics, signIn: app.service('signIn'),
        onQueued: (record, inline) => {
          queue.enqueue(record, inline);
          refreshIntakeGauges();
        },
      });
      smtpPort = await smtp.listen();
      const receiver = smtp;
      tlsReload.register('smtp', config.smtp.tls, hostname, (m) => receiver.setTls(m));
    }
    const pop3 = await startPop3Proxy(config, { capture: app.service('capture'), users: archive, log, metrics, hostname });
    const pop3Port = pop3?.port ?? null;
    const relay = await startRelay({ config, hostname, intake, archive, hooks, log, metrics, enqueue: (record, inline) => enqueue(record, inline), signIn: app.service('signIn') });
    const relayPort = relay?.port ?? null;
    if (pop3) tlsReload.register('pop3', config.pop3.tls, hostname, (m) => pop3.setTls(m));
    if (relay) tlsReload.register('relay', config.relay.tls, config.relay.hostname || hostname, (m) => relay.relay.setTls(m));
    const pop3sPort = pop3?.tlsPort ?? null;
    const adminTls = config.admin.tls.cert !== '' ? await loadTls(config.admin.tls, config.dataDir, hostname, log) : null;
    const startedAt = Date.now();
    const admin = new AdminServer({
      onRequest: auditing.onAdminRequest,
      access: compliance.access, sessions, version: VERSION,
      config: config.admin, token, archive, intake, metrics, log, tls: adminTls, isReady: () => ready, routes: adminRoutes, hooks,
      status: {
        status: async () => {
          const c = intake.counts();
          return {
            version: VERSION,
            uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
            dataDir: config.dataDir,
            storage: archive.backend,
            listeners: { smtp: smtpPort, pop3: pop3Port, pop3s: pop3sPort, relay: relayPort, ...Object.fromEntries(listenerPorts) },
            plugins: app.plugins(),
            intake: { depth: c.active + c.deferred, active: c.active, deferred: c.deferred, corrupt: c.corrupt, held: intake.heldCount(), processing: queue.active },
            archive: await archive.stats(),
            flagged: await archive.listFlagged(100),
            durability: { refusingWrites: storageHealth.failing(), lostWrites: storageHealth.losses() },
            ...(cluster ? { nodes: await cluster.nodes() } : {}),
            unrouted: { user: config.routing.unmatchedUser, messages: (await archive.folders(config.routing.unmatchedUser)).reduce((n, f) => n + f.messages, 0) },
          };
        },
      },
    });
    const adminPort = await admin.listen();
    if (adminTls) tlsReload.register('admin', config.admin.tls, hostname, (m) => admin.setTls(m));
    tlsReload.watch();
    app.onClose('core', () => tlsReload.unwatch());
    if (cluster) {
      await cluster.start(() => ({ smtp: smtpPort, pop3: pop3Port, pop3s: pop3sPort, relay: relayPort, admin: adminPort, ...Object.fromEntries(listenerPorts) }));
      app.onClose('cluster', () => cluster.stop());
    }
    ready = true;
    log.info('Postern is ready', { version: VERSION, dataDir: config.dataDir, smtpPort, pop3Port, pop3sPort, relayPort, adminPort, listeners: Object.fromEntries(listenerPorts), config: loaded.file ?? '(defaults)' });

    let stopping: Promise<void> | null = null;
    const shutdown = (reason: string): Promise<void> => {
      stopping ??= (async () => {
        log.info('Shutting down', { reason });
        ready = false;
        const graceMs = config.shutdown.graceSeconds * 1000;
        await smtp?.close(graceMs);
        await relay?.relay.close(graceMs);
        await pop3?.close(graceMs);
        await jobs.stop(graceMs);
        const drained = await queue.stop(graceMs);
        if (!drained) log.warn('Archiving did not finish in the grace period; remaining entries stay in the intake');
        await admin.close();
        await app.close();
        log.info('Stopped');
      })();
      return stopping;
    };
    return { app, intake, queue, smtpPort, pop3Port, pop3sPort, relayPort, adminPort, log, shutdown };
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
}

/** Users listed in the config are added at start when missing; existing users are left as they are. */
async function seedUsers(archive: KvArchiveStore, users: LoadedConfig['config']['users'], log: Logger): Promise<void> {
  for (const u of users) {
    if (await archive.getUser(u.name)) continue;
    try {
      await archive.addUser(u);
      log.info('User added from the configuration', { user: u.name });
    } catch (err) {
      if (!isPosternError(err)) throw err;
      throw new PosternError('CONFIG_INVALID', `User "${u.name}" from the configuration cannot be added: ${err.message}`);
    }
  }
}

/**
 * `postern serve`: start, and exit 0 after a graceful shutdown on SIGTERM or SIGINT. Under systemd
 * (Type=notify) READY=1 is sent once every listener is open, STOPPING=1 when the stop begins.
 */
export async function serve(configFile: string | null): Promise<void> {
  const running = await startServer(loadConfig(configFile));
  const notifier = SystemdNotifier.fromEnv(running.log);
  const ports = Object.entries({ smtp: running.smtpPort, relay: running.relayPort, pop3: running.pop3Port, admin: running.adminPort, ...running.app.service('listeners').all() })
    .filter(([, port]) => port !== null).map(([name, port]) => `${name} ${port}`).join(', ');
  notifier?.ready(`Ready: ${ports}`);
  const shutdown = (reason: string): Promise<void> => {
    notifier?.stopping(reason);
    return running.shutdown(reason).finally(() => notifier?.close());
  };
  installProcessGuard({ log: running.log, metrics: running.app.service('metrics'), shutdown });
  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown(signal).then(() => process.exit(0), (err: unknown) => {
      running.log.error('Shutdown failed', { err: String(err) });
      process.exit(1);
    });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
