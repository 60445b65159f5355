// `postern user passwd USER` (the archive password, read from standard input: without echo on a
// terminal, else the first line) and `postern user imap USER on|off` (IMAP access). Both go through
// the admin API routes of the imap plugin; the password travels only in the request body.
import type { Command } from 'commander';
import { AdminClientError, callJson, type AdminTarget } from './client.ts';

const MAX_PASSWORD = 1024;

/** The first line of standard input; on a terminal, prompted and typed without echo. */
export async function readPassword(prompt: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  if (input.isTTY) {
    output.write(prompt);
    input.setRawMode(true);
    input.resume();
    try {
      return await new Promise<string>((resolve, reject) => {
        let typed = '';
        const onData = (chunk: Buffer): void => {
          for (const ch of chunk.toString('utf8')) {
            if (ch === '\r' || ch === '\n') {
              input.off('data', onData);
              output.write('\n');
              return resolve(typed);
            }
            if (ch === '\u0003') {
              input.off('data', onData);
              return reject(new AdminClientError('Cancelled', null));
            }
            if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
            else if (typed.length < MAX_PASSWORD) typed += ch;
          }
        };
        input.on('data', onData);
      });
    } finally {
      input.setRawMode(false);
      input.pause();
    }
  }
  let text = '';
  for await (const chunk of input as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    const nl = text.indexOf('\n');
    if (nl >= 0) {
      text = text.slice(0, nl);
      break;
    }
    if (text.length > MAX_PASSWORD * 4) break;
  }
  return text.replace(/\r$/, '');
}

/** Add `passwd` and `imap` to the `user` command group. */
export function addImapCommands(user: Command, target: () => AdminTarget): void {
  user.command('passwd <name>')
    .description("set a user's archive (IMAP) password, read from standard input (first line; no echo on a terminal)")
    .action(async (name: string) => {
      const password = await readPassword(`New archive password for ${name}: `);
      if (password === '') throw new AdminClientError('No password given on standard input', null);
      // The core account route: the admin token may set anyone's password (audited as a compliance change).
      await callJson(target(), 'PUT', '/api/v1/account/password', { user: name, password });
      process.stdout.write(`Password set for ${name}\n`);
    });
  user.command('imap <name> <state>')
    .description('allow (on) or refuse (off) IMAP access to the archive for a user; groups can be allowed in the imap plugin config (accessGroups)')
    .action(async (name: string, state: string) => {
      if (state !== 'on' && state !== 'off') throw new AdminClientError(`State must be "on" or "off", not "${state}"`, null);
      const res = await callJson<{ notification?: string }>(target(), 'PUT', `/api/v1/users/${encodeURIComponent(name)}/imap`, { enabled: state === 'on' });
      process.stdout.write(`IMAP access ${state === 'on' ? 'enabled' : 'disabled'} for ${name}\n`);
      if (state === 'on' && res.notification) process.stdout.write(`Notification: ${res.notification}\n`);
    });
}
