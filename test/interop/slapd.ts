// A private OpenLDAP (Debian slapd) for the directory interop test: slapd.conf in a temporary directory
// (mdb database, the AD-like schema of test/interop/ldap/ad-like.schema), listening only on
// ldap://127.0.0.1:<free port> (StartTLS offered) and ldaps://127.0.0.1:<another>, with a certificate
// for 127.0.0.1 made here by openssl (caFile = that certificate), seeded and changed with
// ldapadd/ldapmodify as its root DN.
// Stopped (and its directory removed) by stop(); nothing is left on port 389.
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCHEMA = fileURLToPath(new URL('./ldap/ad-like.schema', import.meta.url));
export const SUFFIX = 'dc=example,dc=test';
export const ROOT_DN = `cn=admin,${SUFFIX}`;
const ROOT_PW = 'root-secret';

export interface Slapd {
  url: string;
  /** ldaps:// on its own port. */
  ldapsUrl: string;
  /** The server's self-signed certificate (PEM), to trust as a CA. */
  certFile: string;
  port: number;
  dir: string;
  /** Apply LDIF changes (changetype records) or add entries (plain records) as the root DN. */
  modify(ldif: string): Promise<void>;
  add(ldif: string): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-slapd-'));
  mkdirSync(join(dir, 'db'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  writeFileSync(join(dir, 'slapd.conf'), [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    `include ${SCHEMA}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `TLSCertificateFile ${certFile}`,
    `TLSCertificateKeyFile ${keyFile}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'database mdb',
    `suffix "${SUFFIX}"`,
    `rootdn "${ROOT_DN}"`,
    `rootpw ${ROOT_PW}`,
    `directory ${join(dir, 'db')}`,
    'maxsize 16777216',
    'index objectClass eq',
    'access to attrs=userPassword by self write by anonymous auth by * none',
    'access to * by users read by * none',
    '',
  ].join('\n'));
  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${await freePort()}`;
  const child = spawn('/usr/sbin/slapd', ['-d', '0', '-h', `${url} ${ldapsUrl}`, '-f', join(dir, 'slapd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => { stderr += d; });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ldap = (tool: string, args: string[], input: string): Promise<unknown> => new Promise((resolve, reject) => {
    const p = execFile(tool, ['-x', '-H', url, '-D', ROOT_DN, '-w', ROOT_PW, ...args], (err, _out, errOut) => (err ? reject(new Error(`${tool}: ${errOut || err.message}`)) : resolve(undefined)));
    p.stdin?.end(input);
  });
  // Ready when a search answers.
  for (let i = 0; ; i++) {
    try {
      await run('/usr/bin/ldapsearch', ['-x', '-H', url, '-b', '', '-s', 'base', '(objectClass=*)']);
      break;
    } catch (err) {
      if (i > 100 || child.exitCode !== null) throw new Error(`slapd did not start: ${stderr || (err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let stopped = false;
  return {
    url, ldapsUrl, certFile, port, dir,
    modify: async (ldif) => void (await ldap('/usr/bin/ldapmodify', [], ldif)),
    add: async (ldif) => void (await ldap('/usr/bin/ldapadd', [], ldif)),
    async stop() {
      if (stopped) return;
      stopped = true;
      const pid = (() => {
        try {
          return Number(readFileSync(join(dir, 'slapd.pid'), 'utf8').trim());
        } catch {
          return child.pid ?? 0;
        }
      })();
      if (child.exitCode === null) {
        try {
          process.kill(pid || (child.pid ?? 0), 'SIGTERM');
        } catch {
          // already gone
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      if (!process.env.POSTERN_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
    },
  };
}
