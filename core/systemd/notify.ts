// The systemd readiness protocol for `postern serve` under Type=notify: READY=1 once every listener is
// open, WATCHDOG=1 every half WATCHDOG_USEC while the event loop runs, STOPPING=1 when a graceful stop
// begins, STATUS= lines for `systemctl status`. Messages go through core/systemd/notify-helper.py
// (python3), a long-lived child, because Node cannot send unix datagrams; the unit sets
// NotifyAccess=all so systemd accepts them from that child. Does nothing without NOTIFY_SOCKET.
// Trusts: the environment systemd set. Hands on: nothing (failures are logged, never thrown).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.ts';

const HELPER = fileURLToPath(new URL('./notify-helper.py', import.meta.url));
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export class SystemdNotifier {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(private readonly helper: ChildProcess, private readonly log: Logger, private readonly watchdogMs: number | null) {}

  /**
   * A notifier when systemd asked for one (NOTIFY_SOCKET), else null. NOTIFY_SOCKET and the watchdog
   * variables are removed from this process's environment so child processes do not inherit them.
   */
  static fromEnv(log: Logger, env: NodeJS.ProcessEnv = process.env): SystemdNotifier | null {
    const socket = env.NOTIFY_SOCKET ?? '';
    const usec = Number(env.WATCHDOG_USEC ?? '');
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
    if (socket === '') return null;
    const helper = spawn(PYTHON, [HELPER], { env: { NOTIFY_SOCKET: socket, PATH: env.PATH ?? '/usr/bin:/bin' }, stdio: ['pipe', 'ignore', 'pipe'] });
    helper.on('error', (err) => log.error('systemd notification helper cannot run (python3 is needed for Type=notify)', { err: err.message }));
    helper.stderr?.setEncoding('utf8');
    helper.stderr?.on('data', (d: string) => log.warn('systemd notification failed', { err: d.trim().slice(0, 500) }));
    helper.stdin?.on('error', () => undefined);
    const notifier = new SystemdNotifier(helper, log, Number.isFinite(usec) && usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : null);
    helper.once('exit', (code, signal) => {
      if (!notifier.closed) log.warn('systemd notification helper stopped', { code, signal });
      notifier.stopWatchdog();
    });
    return notifier;
  }

  private send(line: string): void {
    if (this.closed || !this.helper.stdin?.writable) return;
    this.helper.stdin.write(`${line.replace(/[\r\n]+/g, ' ')}\n`);
  }

  /** Every listener is open: READY=1, then the watchdog pings (when systemd set WatchdogSec). */
  ready(status: string): void {
    this.send('READY=1');
    this.send(`STATUS=${status}`);
    if (this.watchdogMs !== null && !this.timer) {
      this.send('WATCHDOG=1');
      this.timer = setInterval(() => this.send('WATCHDOG=1'), this.watchdogMs);
      this.timer.unref();
    }
  }

  status(text: string): void {
    this.send(`STATUS=${text}`);
  }

  stopping(reason: string): void {
    this.send('STOPPING=1');
    this.send(`STATUS=Stopping (${reason})`);
  }

  private stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stop pinging and let the helper exit once it has sent what is queued. */
  close(): void {
    this.stopWatchdog();
    this.closed = true;
    this.helper.stdin?.end();
  }
}
