// OAuth2 access tokens for IMAP sources (XOAUTH2 through imapflow's accessToken): the client-credentials
// grant (Microsoft 365 application permission: one token for every mailbox) or a Google service
// account (a signed JWT per mailbox address, domain-wide delegation). The client secret and the
// service-account key come from a file or an environment variable on the server host, never from the
// job definition. Tokens are cached per (endpoint, client, scope, subject) and fetched anew before
// they expire; neither they nor the secrets are ever put in a log line or an error.
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { PosternError } from '../errors.ts';

const httpUrl = z.string().url().refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/);

export const oauth2Schema = z.discriminatedUnion('flow', [
  z.strictObject({
    /** Client credentials (RFC 6749 4.4): Microsoft 365 with an application permission. */
    flow: z.literal('client-credentials'),
    tokenUrl: httpUrl,
    clientId: z.string().min(1).max(256),
    clientSecretFile: z.string().min(1).optional(),
    clientSecretEnv: envName.optional(),
    scope: z.string().min(1).max(1000).default('https://outlook.office365.com/.default'),
  }).refine((o) => (o.clientSecretFile === undefined) !== (o.clientSecretEnv === undefined), { message: 'give exactly one of clientSecretFile, clientSecretEnv', path: ['clientSecretFile'] }),
  z.strictObject({
    /** A Google service account's key (JSON with client_email and private_key), acting for each mailbox. */
    flow: z.literal('service-account'),
    keyFile: z.string().min(1),
    tokenUrl: httpUrl.default('https://oauth2.googleapis.com/token'),
    scope: z.string().min(1).max(1000).default('https://mail.google.com/'),
  }),
]);

export type OAuth2Options = z.infer<typeof oauth2Schema>;

const tokenReply = z.object({
  access_token: z.string().min(1).max(16_384).regex(/^[\x21-\x7e]+$/, 'has characters a bearer token cannot have'),
  expires_in: z.coerce.number().positive().max(10 * 365 * 86_400).optional(),
});
const serviceKey = z.object({ client_email: z.string().min(1), private_key: z.string().includes('PRIVATE KEY') });

/** Refresh this long before expiry (half the lifetime for short-lived tokens). */
const REFRESH_MARGIN_MS = 60_000;
const DEFAULT_LIFETIME_S = 3600;
const TIMEOUT_MS = 30_000;

function readSecret(file: string | undefined, env: string | undefined, what: string): string {
  if (env !== undefined) {
    const v = process.env[env];
    if (v === undefined || v === '') throw new PosternError('CONFIG_INVALID', `Environment variable "${env}" (the ${what}) is not set`);
    return v;
  }
  try {
    return readFileSync(file ?? '', 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new PosternError('CONFIG_INVALID', `The ${what} file "${file}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function serviceAssertion(o: Extract<OAuth2Options, { flow: 'service-account' }>, subject: string, nowS: number): string {
  let key: z.infer<typeof serviceKey>;
  try {
    key = serviceKey.parse(JSON.parse(readSecret(o.keyFile, undefined, 'service-account key')));
  } catch (err) {
    if (err instanceof PosternError) throw err;
    throw new PosternError('CONFIG_INVALID', `The service-account key file "${o.keyFile}" is not a JSON key with client_email and private_key`);
  }
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const claims = b64url(JSON.stringify({ iss: key.client_email, sub: subject, scope: o.scope, aud: o.tokenUrl, iat: nowS, exp: nowS + 3600 }));
  const signer = createSign('RSA-SHA256');
  signer.update(`${head}.${claims}`);
  return `${head}.${claims}.${b64url(signer.sign(key.private_key))}`;
}

interface Cached { token: string; refreshAt: number }

export class OAuth2Tokens {
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<Cached>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** An access token for `subject` (the mailbox address), from the cache while it is fresh. */
  async get(o: OAuth2Options, subject: string, signal?: AbortSignal): Promise<string> {
    // Client-credentials tokens are the application's, the same for every mailbox.
    const key = JSON.stringify([o.flow, o.tokenUrl, o.flow === 'client-credentials' ? o.clientId : o.keyFile, o.scope, o.flow === 'service-account' ? subject : '']);
    const hit = this.cache.get(key);
    if (hit && this.now() < hit.refreshAt) return hit.token;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.fetchToken(o, subject, signal).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    const fresh = await p;
    this.cache.set(key, fresh);
    return fresh.token;
  }

  private async fetchToken(o: OAuth2Options, subject: string, signal?: AbortSignal): Promise<Cached> {
    const started = this.now();
    const form = new URLSearchParams();
    if (o.flow === 'client-credentials') {
      form.set('grant_type', 'client_credentials');
      form.set('client_id', o.clientId);
      form.set('client_secret', readSecret(o.clientSecretFile, o.clientSecretEnv, 'OAuth2 client secret'));
      form.set('scope', o.scope);
    } else {
      form.set('grant_type', 'urn:ietf:params:oauth:grant-type:jwt-bearer');
      form.set('assertion', serviceAssertion(o, subject, Math.floor(started / 1000)));
    }
    let res: Response;
    try {
      res = await fetch(o.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const c = (err as { cause?: { code?: string; errors?: Array<{ code?: string }>; message?: string } }).cause;
      const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).name;
      throw new PosternError('OAUTH2_FAILED', `The token endpoint "${o.tokenUrl}" cannot be reached (${cause})`);
    }
    const text = (await res.text()).slice(0, 65_536);
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // reported below by status or shape
    }
    if (!res.ok) {
      const e = body as { error?: unknown; error_description?: unknown } | null;
      const why = typeof e?.error === 'string' ? e.error.slice(0, 100) : `HTTP ${res.status}`;
      throw new PosternError('OAUTH2_FAILED', `The token endpoint "${o.tokenUrl}" refused the ${o.flow} grant: ${why}`);
    }
    const r = tokenReply.safeParse(body);
    if (!r.success) throw new PosternError('OAUTH2_FAILED', `The token endpoint "${o.tokenUrl}" answered without a usable access_token`);
    const lifetimeMs = (r.data.expires_in ?? DEFAULT_LIFETIME_S) * 1000;
    return { token: r.data.access_token, refreshAt: started + lifetimeMs - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2) };
  }
}
