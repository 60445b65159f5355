// A terminal program (mutt …) in a private tmux server: start it in a session of a fixed size, read the
// screen (capture-pane), wait for something to appear on it, send keys, and kill the server.
import { randomBytes } from 'node:crypto';
import { run, runOk, sleep } from './harness.ts';

export class TmuxScreen {
  private readonly socket = `postern-tmux-${process.pid}-${randomBytes(4).toString('hex')}`;

  private tmux(args: string[]): Promise<Buffer> {
    return runOk('tmux', ['-L', this.socket, ...args], { timeoutMs: 10_000 }).then((r) => r.stdout);
  }

  /** Run `command` (one shell command line) in a new detached session `name`. */
  async start(name: string, command: string, size = { x: 200, y: 50 }): Promise<void> {
    await this.tmux(['-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', String(size.x), '-y', String(size.y), command]);
  }

  async screen(name: string): Promise<string> {
    return (await this.tmux(['capture-pane', '-p', '-t', name])).toString();
  }

  /** The screen once `ok` holds for it; an error showing the last screen after timeoutMs. */
  async waitScreen(name: string, what: string, ok: (s: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let s = '';
    while (Date.now() < deadline) {
      s = await this.screen(name);
      if (ok(s)) return s;
      await sleep(200);
    }
    throw new Error(`The screen never showed ${what}:\n${s}`);
  }

  /** Keys as tmux names them ("Enter", "q"), or literal text with literal = true. */
  async send(name: string, keys: string, literal = false): Promise<void> {
    await this.tmux(['send-keys', '-t', name, ...(literal ? ['-l'] : []), keys]);
  }

  async kill(): Promise<void> {
    await run('tmux', ['-L', this.socket, 'kill-server']).catch(() => undefined);
  }
}
