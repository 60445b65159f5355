// Starting the POP3 proxy from the configuration, for core/app/serve.ts: nothing when disabled or
// when no upstream is configured (with a log line saying which), else the listeners with the
// configured client-leg certificate (or the development one from core/tls/dev-certificate.ts).
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { CaptureService } from '../intake/capture.ts';
import { loadTls, type TlsMaterial } from '../tls/dev-certificate.ts';
import { Pop3Proxy, type Pop3Ports, type Pop3ProxyDeps } from './proxy.ts';

export interface StartedPop3 extends Pop3Ports {
  close(graceMs: number): Promise<void>;
  /** Serve a new certificate from the next handshake on (SIGHUP). */
  setTls(material: TlsMaterial): void;
}

export async function startPop3Proxy(config: Config, deps: {
  capture: CaptureService; users: Pop3ProxyDeps['users']; log: Logger; metrics: Metrics; hostname: string;
}): Promise<StartedPop3 | null> {
  const c = config.pop3;
  if (!c.enabled) {
    deps.log.info('POP3 proxy disabled (pop3.enabled is false)');
    return null;
  }
  if (c.upstream === '') {
    deps.log.info('POP3 proxy not started: no upstream configured (set pop3.upstream or POSTERN_POP3_UPSTREAM to "host:port")');
    return null;
  }
  const tls = await loadTls(c.tls, config.dataDir, deps.hostname, deps.log);
  const proxy = new Pop3Proxy({ config: c, tls, capture: deps.capture, users: deps.users, log: deps.log, metrics: deps.metrics });
  const ports = await proxy.listen();
  return { ...ports, close: (graceMs) => proxy.close(graceMs), setTls: (m) => proxy.setTls(m) };
}
