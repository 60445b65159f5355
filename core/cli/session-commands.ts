// `postern login [USER]` and `postern logout`: sign in to the admin API as an archive user once and keep
// the short-lived API session token (POST /api/v1/sessions) for later commands, which then act as that
// user instead of with the admin token; logout ends the session on the server and forgets it. The user
// is the argument or asked on a terminal; the password comes from POSTERN_PASSWORD, else a prompt without
// echo on a terminal, else the first line of standard input. Stores tokens only through session-file.ts
// (mode 0600).
import { hostname } from 'node:os';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { AdminClientError, errorOf } from './client.ts';
import { forgetSession, saveSession, sessionFilePath } from './session-file.ts';

interface Target {
  url: string;
  insecure: boolean;
}

function send(target: Target, method: string, path: string, authorization: string, body?: unknown): Promise<IncomingMessage> {
  const url = new URL(path, target.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method,
    headers: { authorization, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
    ...(url.protocol === 'https:' ? { rejectUnauthorized: !target.insecure } : {}),
    timeout: 30000,
  });
  return new Promise((resolve, reject) => {
    req.on('response', resolve);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new AdminClientError(`Cannot reach the admin API at ${target.url}: ${err.message}`, null)));
    req.end(payload);
  });
}

async function json(res: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) parts.push(chunk);
  return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
}

/** A line typed on the terminal without echo (the password prompt). */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = process.stdin;
    process.stderr.write(question);
    input.setRawMode(true);
    input.resume();
    input.setEncoding('utf8');
    let text = '';
    const done = (err: Error | null): void => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new AdminClientError('Cancelled', null));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    input.on('data', onData);
  });
}

async function firstLineOfStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8').split(/\r?\n/)[0] ?? '';
}

/** The user to sign in as: the argument, else asked on a terminal. */
async function userName(given: string | undefined): Promise<string> {
  if (given) return given;
  if (!process.stdin.isTTY) throw new AdminClientError('Name the user: postern login USER', null);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const typed = (await rl.question('User: ')).trim();
    if (typed === '') throw new AdminClientError('No user name given', null);
    return typed;
  } finally {
    rl.close();
  }
}

async function password(user: string): Promise<string> {
  const fromEnv = process.env.POSTERN_PASSWORD;
  if (fromEnv) return fromEnv;
  const typed = process.stdin.isTTY ? await promptHidden(`Password of ${user}: `) : await firstLineOfStdin();
  if (typed === '') throw new AdminClientError('No password given (POSTERN_PASSWORD, the prompt or standard input)', null);
  return typed;
}

export function addSessionCommands(program: Command, target: () => Target): void {
  program.command('login')
    .description(`sign in as an archive user and keep a short-lived API token for later commands (in ${sessionFilePath().replace(/^\/root|^\/home\/[^/]+/, '~')}; password from POSTERN_PASSWORD, a prompt or standard input)`)
    .argument('[user]', 'archive user name (needs the "login" privilege); asked when not given')
    .action(async (given: string | undefined) => {
      const t = target();
      const user = await userName(given);
      const basic = `Basic ${Buffer.from(`${user}:${await password(user)}`).toString('base64')}`;
      const res = await send(t, 'POST', '/api/v1/sessions', basic, { label: `cli on ${hostname().slice(0, 80)}` });
      if (res.statusCode === 401) {
        res.resume();
        throw new AdminClientError(`Wrong user name or password for "${user}", or "${user}" may not sign in (needs the "login" privilege)`, 401);
      }
      if (res.statusCode !== 201) throw await errorOf(res);
      const r = (await json(res)) as { token: string; session: { id: string; user: string; expiresAt: string } };
      saveSession(t.url, { user: r.session.user, token: r.token, expiresAt: r.session.expiresAt });
      process.stdout.write(`Signed in as ${r.session.user} until ${r.session.expiresAt} (session ${r.session.id}); commands to ${t.url} now act as ${r.session.user}\n`);
    });

  program.command('logout')
    .description('end the API session of postern login on the server and forget it (commands act with the admin token again)')
    .action(async () => {
      const t = target();
      const stored = forgetSession(t.url);
      if (!stored) {
        process.stdout.write(`Not signed in to ${t.url}\n`);
        return;
      }
      const res = await send(t, 'DELETE', '/api/v1/sessions/current', `Bearer ${stored.token}`);
      // 401: it had expired or was ended already; forgotten either way.
      if (res.statusCode !== 200 && res.statusCode !== 401) throw await errorOf(res);
      res.resume();
      process.stdout.write(`Signed out ${stored.user} from ${t.url}\n`);
    });
}
