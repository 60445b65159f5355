// A private, real Dovecot (Debian's /usr/sbin/dovecot) for the interop tier and the benches: its
// own config, base_dir, state dir and log file under a temp dir, IMAP and/or POP3 on free loopback
// ports (plain with STARTTLS/STLS, and implicit TLS), a self-signed certificate made with openssl,
// passwd-file users with plaintext auth allowed, and one Maildir per user under the temp dir.
// It never reads /etc/dovecot and never listens on a standard port.
//
// API
//   const dc = await startDovecot({
//     users: [{ name: 'alice', password: 'pw', messages: [buf1, buf2], folders: { Sent: [buf3] } }],
//     protocols?: ['imap', 'pop3'],   // default both
//     implicitTls?: true,             // default true: also listen with implicit TLS (imaps/pop3s)
//     extraConfig?: '...',            // appended to dovecot.conf verbatim
//     name?: 'my-test',               // used for the kept failure log
//   });
//   dc.imapPort / dc.imapsPort / dc.pop3Port / dc.pop3sPort   // 0 when not listening
//   dc.pid                          // the master process (for memory measurements)
//   dc.certPem / dc.certFile        // the self-signed certificate (CA for TLS clients), CN=localhost,
//                                   //   subjectAltName IP:127.0.0.1 and DNS:localhost
//   dc.maildir('alice')             // absolute path of alice's Maildir (INBOX = its cur/new/tmp)
//   dc.addFolder('alice', 'Archive/2024')   // creates a Maildir++ folder (".Archive.2024"); idempotent
//   dc.addMessage('alice', bytes, 'Sent?')  // writes one Maildir file (tmp/ then rename to cur/);
//                                   //   returns its path; works while Dovecot runs
//   makeCertificate(dir)            // (also exported) the same kind of certificate for other servers
//   dc.logs()                       // Dovecot's log so far
//   await dc.stop()                 // SIGTERM (SIGKILL after 5 s), removes the temp dir
// Messages are stored byte-for-byte as given (Dovecot itself serves bare LF as CRLF). Files are named
// with an increasing time prefix, so UIDs follow the order of `messages` and addMessage calls:
// the first message of a folder is UID 1. The hierarchy separator is "/", "Sent" is \Sent.
// Logins are PLAIN/LOGIN, allowed without TLS. Dovecot delays repeated failed logins from one
// address (2, 4, 8 s...): tests of failures should use distinct 127.0.0.x source addresses.
//
// Root: mail processes never run as root. Run as root (CI), mail is owned by and accessed as the
// unprivileged `nobody` (files are chowned to it), Dovecot's internal and login users are
// dovecot/dovenull when they exist (else nobody); the temp tree is made traversable. Run as another
// user, everything (mail, internal and login processes) runs as that user.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { FAILURE_LOG_DIR, freePort, makeTempDir, runOk, sleep } from './harness.ts';

export const DOVECOT_BIN = '/usr/sbin/dovecot';

export interface DovecotUser {
  name: string;
  password: string;
  /** INBOX messages, in UID order. */
  messages?: Buffer[];
  /** Other folders ("/"-separated names) and their messages, in UID order. */
  folders?: Record<string, Buffer[]>;
}

export interface DovecotOptions {
  users: DovecotUser[];
  protocols?: Array<'imap' | 'pop3'>;
  implicitTls?: boolean;
  extraConfig?: string;
  name?: string;
}

export interface Dovecot {
  /** Process id of the Dovecot master (its children are the login, imap and pop3 processes). */
  pid: number;
  imapPort: number;
  imapsPort: number;
  pop3Port: number;
  pop3sPort: number;
  certPem: string;
  certFile: string;
  dir: string;
  logFile: string;
  maildir(user: string): string;
  addFolder(user: string, folder: string): string;
  addMessage(user: string, bytes: Buffer, folder?: string): string;
  logs(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;
const NAME_RE = /^[A-Za-z0-9._-]+$/;
/** Time prefix of Maildir file names: increasing, so Dovecot assigns UIDs in write order. */
const BASE_TIME = 1_600_000_000;
let fileSeq = 0;

interface Identity {
  uid: number;
  gid: number;
  internalUser: string;
  internalGroup: string;
  loginUser: string;
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

function groupName(gid: number): string {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && Number(f[2]) === gid && f[0]) return f[0];
  }
  throw new Error(`dovecot harness: no group with gid ${gid} in /etc/group`);
}

function identity(): Identity {
  const me = userInfo();
  if (me.uid !== 0) return { uid: me.uid, gid: me.gid, internalUser: me.username, internalGroup: groupName(me.gid), loginUser: me.username };
  const nobody = lookupUser('nobody');
  if (!nobody) throw new Error('dovecot harness: running as root needs a "nobody" user for mail access');
  return {
    uid: nobody.uid,
    gid: nobody.gid,
    internalUser: lookupUser('dovecot') ? 'dovecot' : 'nobody',
    internalGroup: groupName((lookupUser('dovecot') ?? nobody).gid),
    loginUser: lookupUser('dovenull') ? 'dovenull' : 'nobody',
  };
}

/** Maildir++ directory name of a "/"-separated folder ("" or INBOX = the Maildir itself). */
function folderDir(maildir: string, folder: string | undefined): string {
  if (folder === undefined || folder === '' || folder.toUpperCase() === 'INBOX') return maildir;
  const parts = folder.split('/');
  for (const p of parts) {
    if (!p || p.startsWith('.') || p.includes('.') || /[\0\r\n\\~*%]/.test(p)) throw new Error(`dovecot harness: unsupported folder name ${JSON.stringify(folder)}`);
  }
  return join(maildir, '.' + parts.join('.'));
}

/** A login service with a plain and an implicit-TLS listener on loopback (port 0 = unused). */
function loginService(proto: 'imap' | 'pop3', plain: number, tls: number): string[] {
  const listener = (name: string, port: number, ssl: boolean): string[] =>
    [`  inet_listener ${name} {`, '    address = 127.0.0.1', `    port = ${port}`, ...(ssl ? ['    ssl = yes'] : []), '  }'];
  return [`service ${proto}-login {`, '  chroot =', ...listener(proto, plain, false), ...listener(`${proto}s`, tls, true), '}'];
}

function conf(o: {
  dir: string; id: Identity; protocols: Array<'imap' | 'pop3'>; ports: { imap: number; imaps: number; pop3: number; pop3s: number }; extra: string;
}): string {
  const { dir, id, ports } = o;
  const dh = '/usr/share/dovecot/dh.pem';
  const lines = [
    `instance_name = dovecot-test-${process.pid}-${Date.now()}`,
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    `info_log_path = ${dir}/dovecot.log`,
    `protocols = ${o.protocols.join(' ')}`,
    `listen = 127.0.0.1`,
    `shutdown_clients = yes`,
    `default_internal_user = ${id.internalUser}`,
    `default_internal_group = ${id.internalGroup}`,
    `default_login_user = ${id.loginUser}`,
    `first_valid_uid = ${Math.min(id.uid, 500)}`,
    `first_valid_gid = ${Math.min(id.gid, 1)}`,
    `ssl = yes`,
    `ssl_cert = <${dir}/cert.pem`,
    `ssl_key = <${dir}/key.pem`,
    ...(existsSync(dh) ? [`ssl_dh = <${dh}`] : []),
    `disable_plaintext_auth = no`,
    `auth_mechanisms = plain login`,
    `auth_failure_delay = 0`,
    `mail_location = maildir:~/Maildir`,
    `mail_max_userip_connections = 100000`,
    `passdb {`,
    `  driver = passwd-file`,
    `  args = scheme=PLAIN username_format=%u ${dir}/users`,
    `}`,
    `userdb {`,
    `  driver = passwd-file`,
    `  args = username_format=%u ${dir}/users`,
    `}`,
    `namespace inbox {`,
    `  inbox = yes`,
    `  separator = /`,
    `  mailbox Sent {`,
    `    special_use = \\Sent`,
    `  }`,
    `}`,
    ...loginService('imap', ports.imap, ports.imaps),
    ...loginService('pop3', ports.pop3, ports.pop3s),
    `service imap {`,
    `  process_limit = 2048`,
    `}`,
    `protocol pop3 {`,
    `  pop3_uidl_format = %08Xu%08Xv`,
    `}`,
    o.extra,
  ];
  return lines.join('\n') + '\n';
}

/** A self-signed certificate for CN=localhost, IP:127.0.0.1 (openssl): DIR/cert.pem and DIR/key.pem. */
export async function makeCertificate(dir: string): Promise<{ certFile: string; keyFile: string; certPem: string }> {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await runOk('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile,
  ]);
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8') };
}

/** Resolves once `port` answers with `greeting` (a prefix of the first line). */
async function greets(port: number, greeting: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.startsWith(greeting));
    });
  });
}

/** Starts a private Dovecot; retries with new ports when one was taken meanwhile. */
export async function startDovecot(options: DovecotOptions): Promise<Dovecot> {
  let last: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      last = err as Error;
      if (!/Address already in use/i.test(last.message)) throw last;
    }
  }
  throw last ?? new Error('startDovecot failed');
}

async function startOnce(options: DovecotOptions): Promise<Dovecot> {
  if (!existsSync(DOVECOT_BIN)) throw new Error(`${DOVECOT_BIN} is not installed (run test/interop/install-deps.sh)`);
  const protocols = options.protocols ?? ['imap', 'pop3'];
  const implicitTls = options.implicitTls ?? true;
  const id = identity();
  const tmp = makeTempDir('dovecot-');
  const dir = tmp.path;
  chmodSync(dir, 0o755);
  for (const sub of ['run', 'state', 'home']) mkdirSync(join(dir, sub), { mode: 0o755 });
  const logFile = join(dir, 'dovecot.log');
  writeFileSync(logFile, '');

  const users = new Map<string, string>();
  const ownToMail = (path: string): void => {
    if (process.getuid?.() === 0) chownSync(path, id.uid, id.gid);
  };
  const mkdirMail = (path: string): void => {
    if (existsSync(path)) return;
    mkdirSync(path, { mode: 0o700 });
    ownToMail(path);
  };
  const maildir = (user: string): string => {
    const home = users.get(user);
    if (home === undefined) throw new Error(`dovecot harness: no user ${JSON.stringify(user)}`);
    return join(home, 'Maildir');
  };
  const addFolder = (user: string, folder: string): string => {
    const base = maildir(user);
    const fdir = folderDir(base, folder);
    mkdirMail(fdir);
    for (const sub of ['cur', 'new', 'tmp']) mkdirMail(join(fdir, sub));
    if (fdir !== base) writeFileSync(join(fdir, 'maildirfolder'), '');
    return fdir;
  };
  const addMessage = (user: string, bytes: Buffer, folder?: string): string => {
    const fdir = addFolder(user, folder ?? 'INBOX');
    fileSeq++;
    const base = `${BASE_TIME + fileSeq}.M${fileSeq}P${process.pid}.postern-test`;
    const tmpPath = join(fdir, 'tmp', base);
    writeFileSync(tmpPath, bytes, { mode: 0o600 });
    ownToMail(tmpPath);
    const finalPath = join(fdir, 'cur', `${base}:2,`);
    renameSync(tmpPath, finalPath);
    return finalPath;
  };

  try {
    const passwd: string[] = [];
    for (const u of options.users) {
      if (!NAME_RE.test(u.name)) throw new Error(`dovecot harness: unsupported user name ${JSON.stringify(u.name)}`);
      if (/[:\n]/.test(u.password)) throw new Error('dovecot harness: passwords may not contain ":" or newlines');
      const home = join(dir, 'home', u.name);
      users.set(u.name, home);
      mkdirMail(home);
      passwd.push(`${u.name}:{PLAIN}${u.password}:${id.uid}:${id.gid}::${home}::`);
      addFolder(u.name, 'INBOX');
      for (const m of u.messages ?? []) addMessage(u.name, m, 'INBOX');
      for (const [folder, msgs] of Object.entries(u.folders ?? {})) {
        addFolder(u.name, folder);
        for (const m of msgs) addMessage(u.name, m, folder);
      }
    }
    writeFileSync(join(dir, 'users'), passwd.join('\n') + '\n', { mode: 0o644 });
    chmodSync(join(dir, 'users'), 0o644);

    const { certPem } = await makeCertificate(dir);

    const wantImap = protocols.includes('imap');
    const wantPop3 = protocols.includes('pop3');
    const ports = { imap: 0, imaps: 0, pop3: 0, pop3s: 0 };
    const taken = new Set<number>();
    const pick = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        if (!taken.has(p)) {
          taken.add(p);
          return p;
        }
      }
    };
    if (wantImap) {
      ports.imap = await pick();
      if (implicitTls) ports.imaps = await pick();
    }
    if (wantPop3) {
      ports.pop3 = await pick();
      if (implicitTls) ports.pop3s = await pick();
    }
    const confFile = join(dir, 'dovecot.conf');
    writeFileSync(confFile, conf({ dir, id, protocols, ports, extra: options.extraConfig ?? '' }));

    const out = openSync(join(dir, 'stdout.log'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(DOVECOT_BIN, ['-F', '-c', confFile], { stdio: ['ignore', out, out], detached: false });
    } finally {
      closeSync(out);
    }
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    // Dovecot would outlive a test process that dies without calling stop(): kill it on exit.
    const killOnExit = (): void => {
      if (!exit) child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        process.removeListener('exit', killOnExit);
        resolve();
      });
      child.once('error', () => resolve());
    });
    const logs = (): string => {
      const main = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      const so = existsSync(join(dir, 'stdout.log')) ? readFileSync(join(dir, 'stdout.log'), 'utf8') : '';
      return main + so;
    };
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      if (!exit) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const killed = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), 5000); })]);
        clearTimeout(timer);
        if (killed) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      tmp.cleanup();
    };

    const checks: Array<[number, string]> = [];
    if (ports.imap) checks.push([ports.imap, '* OK']);
    if (ports.pop3) checks.push([ports.pop3, '+OK']);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exit) {
        const text = logs();
        tmp.cleanup();
        throw new Error(`dovecot exited (${exit.code ?? exit.signal}) during start-up:\n${text}`);
      }
      const ok = await Promise.all(checks.map(([p, g]) => greets(p, g)));
      if (ok.every(Boolean)) break;
      if (Date.now() > deadline) {
        const text = logs();
        mkdirSync(FAILURE_LOG_DIR, { recursive: true });
        copyFileSync(logFile, join(FAILURE_LOG_DIR, `dovecot-${(options.name ?? 'start').replace(/[^A-Za-z0-9._-]+/g, '_')}-${Date.now()}.log`));
        await stop();
        throw new Error(`dovecot did not greet on ${checks.map((c) => c[0]).join(', ')} within ${START_TIMEOUT_MS} ms:\n${text}`);
      }
      await sleep(100);
    }

    return {
      pid: child.pid ?? 0,
      imapPort: ports.imap,
      imapsPort: ports.imaps,
      pop3Port: ports.pop3,
      pop3sPort: ports.pop3s,
      certPem,
      certFile: join(dir, 'cert.pem'),
      dir,
      logFile,
      maildir,
      addFolder,
      addMessage,
      logs,
      stop,
    };
  } catch (err) {
    tmp.cleanup();
    throw err;
  }
}
