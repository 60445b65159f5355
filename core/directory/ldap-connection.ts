// Connections to the LDAP / Active Directory server of directory.ldap (ldapts): ldap:// with optional
// StartTLS or ldaps://, the configured CA, a timeout on every operation. Opens a client bound as the
// sync account (password read from passwordFile or passwordEnv at each use, never logged or kept), and
// checks a user's password by a bind as their DN on a connection of its own. Failures become
// DIRECTORY_FAILED errors that name the server and the cause; a wrong password is a value, not an error.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError } from 'ldapts';
import type { Config } from '../config/schema.ts';
import { PosternError, errorMessage } from '../errors.ts';

export type LdapSettings = NonNullable<Config['directory']['ldap']>;

/** TLS options for ldaps:// and StartTLS: the configured CA (or the system's) and verification. */
function tlsOptions(s: LdapSettings): ConnectionOptions {
  const host = new URL(s.url).hostname.replace(/^\[|\]$/g, '');
  const options: ConnectionOptions = { rejectUnauthorized: s.tlsVerify, servername: host };
  if (s.caFile !== '') {
    try {
      options.ca = readFileSync(s.caFile);
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `directory.ldap.caFile "${s.caFile}" cannot be read: ${errorMessage(err)}`);
    }
  }
  return options;
}

/** The sync account's password from passwordFile (first line) or passwordEnv; "" for an anonymous bind. */
export function bindPassword(s: LdapSettings, env: NodeJS.ProcessEnv = process.env): string {
  if (s.passwordFile !== '') {
    try {
      return readFileSync(s.passwordFile, 'utf8').split(/\r?\n/)[0] ?? '';
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `directory.ldap.passwordFile "${s.passwordFile}" cannot be read: ${errorMessage(err)}`);
    }
  }
  if (s.passwordEnv !== '') {
    const v = env[s.passwordEnv];
    if (v === undefined || v === '') throw new PosternError('CONFIG_INVALID', `Environment variable "${s.passwordEnv}" (directory.ldap.passwordEnv) is not set`);
    return v;
  }
  return '';
}

/** A failure talking to the server, as an error that names it (never a password). */
export function directoryError(s: LdapSettings, what: string, err: unknown): PosternError {
  if (err instanceof PosternError) return err;
  const e = err as NodeJS.ErrnoException;
  const cause = e.code && !errorMessage(err).includes(e.code) ? `${e.code}: ${errorMessage(err)}` : errorMessage(err);
  return new PosternError('DIRECTORY_FAILED', `Directory server "${s.url}" ${what}: ${cause || 'no answer'}`, { cause: err });
}

/** A connected client (StartTLS done when configured), not yet bound. */
export async function connect(s: LdapSettings): Promise<Client> {
  const ms = s.timeoutSeconds * 1000;
  const tls = s.url.startsWith('ldaps:') || s.startTls ? tlsOptions(s) : undefined;
  const client = new Client({ url: s.url, timeout: ms, connectTimeout: ms, strictDN: false, ...(s.url.startsWith('ldaps:') && tls ? { tlsOptions: tls } : {}) });
  if (s.startTls) {
    try {
      await client.startTLS(tls);
    } catch (err) {
      await client.unbind().catch(() => undefined);
      throw directoryError(s, 'refused StartTLS or could not be reached', err);
    }
  }
  return client;
}

/** A client bound as the sync account; the caller unbinds it. */
export async function openSyncClient(s: LdapSettings): Promise<Client> {
  const password = bindPassword(s);
  const client = await connect(s);
  try {
    if (s.bindDn !== '') await client.bind(s.bindDn, password);
    return client;
  } catch (err) {
    await client.unbind().catch(() => undefined);
    if (err instanceof InvalidCredentialsError) throw new PosternError('DIRECTORY_FAILED', `Directory server "${s.url}" refused the bind as "${s.bindDn}": invalid credentials (check directory.ldap.passwordFile / passwordEnv)`);
    throw directoryError(s, 'cannot be reached', err);
  }
}

/**
 * Whether `password` is the password of the account `dn`: one bind on a connection of its own.
 * An empty password is refused without asking (an LDAP bind with no password is an anonymous one and
 * would succeed). Throws DIRECTORY_FAILED when the server cannot answer.
 */
export async function checkBind(s: LdapSettings, dn: string, password: string): Promise<boolean> {
  if (password === '' || dn === '') return false;
  let client: Client;
  try {
    client = await connect(s);
  } catch (err) {
    throw directoryError(s, 'cannot be reached', err);
  }
  try {
    await client.bind(dn, password);
    return true;
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false;
    throw directoryError(s, 'cannot be reached', err);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
