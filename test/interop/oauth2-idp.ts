// A minimal OAuth2 identity provider on loopback for the import interop tests (no real one can run
// here). POST /token issues random bearer tokens by the JWT-bearer grant of a Google service account
// (RFC 7523: the assertion's RS256 signature is checked with the registered account's public key,
// its issuer, audience and expiry too; the token acts for the assertion's `sub`, the mailbox) and by
// the client-credentials grant of one registered client (an application token; its application access
// policy, as Exchange Online's, limits it to one mailbox, which introspection reports as the username:
// Dovecot 2.3's oauth2 passdb needs a username from introspection).
// POST /introspect answers RFC 7662 introspection for Dovecot's oauth2 passdb with the token's
// mailbox as `username`. Tokens expire after `lifetimeSeconds`. Dovecot's IMAP side stays real.
import { createVerify, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface Idp {
  port: number;
  tokenUrl: string;
  /** Grants issued, refused, and introspections answered so far. */
  stats: { issued: number; refused: number; introspected: number };
  /** Dovecot's oauth2 passdb settings (the args file) pointing at this IdP. */
  dovecotConf(): string;
  close(): Promise<void>;
}

export interface IdpClients {
  client: { id: string; secret: string; mailbox: string };
  serviceAccount: { email: string; publicKey: KeyObject };
}

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const p of req) {
    size += (p as Buffer).length;
    if (size > 65_536) throw new Error('body too large');
    parts.push(p as Buffer);
  }
  return new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export async function startIdp(clients: IdpClients, lifetimeSeconds = 3600): Promise<Idp> {
  const tokens = new Map<string, { exp: number; subject: string }>();
  const stats = { issued: 0, refused: 0, introspected: 0 };
  let tokenUrl = '';
  const issue = (res: ServerResponse, subject: string): void => {
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, { exp: Date.now() + lifetimeSeconds * 1000, subject });
    stats.issued++;
    reply(res, 200, { access_token: token, token_type: 'Bearer', expires_in: lifetimeSeconds });
  };
  const refuse = (res: ServerResponse, error: string): void => {
    stats.refused++;
    reply(res, 400, { error });
  };
  const server = createServer((req, res) => {
    form(req).then((f) => {
      if (req.method === 'POST' && req.url === '/token') {
        const grant = f.get('grant_type');
        if (grant === 'client_credentials') {
          if (f.get('client_id') !== clients.client.id || f.get('client_secret') !== clients.client.secret) return refuse(res, 'invalid_client');
          return issue(res, clients.client.mailbox);
        }
        if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
          const [h, c, sig] = (f.get('assertion') ?? '').split('.');
          if (!h || !c || !sig) return refuse(res, 'invalid_grant');
          const signed = createVerify('RSA-SHA256').update(`${h}.${c}`).verify(clients.serviceAccount.publicKey, Buffer.from(sig, 'base64url'));
          const claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as { iss?: string; aud?: string; sub?: string; exp?: number };
          const ok = signed && claims.iss === clients.serviceAccount.email && claims.aud === tokenUrl
            && typeof claims.exp === 'number' && claims.exp * 1000 > Date.now() && typeof claims.sub === 'string' && claims.sub !== '';
          return ok ? issue(res, claims.sub as string) : refuse(res, 'invalid_grant');
        }
        return refuse(res, 'unsupported_grant_type');
      }
      if (req.method === 'POST' && req.url === '/introspect') {
        stats.introspected++;
        const t = tokens.get(f.get('token') ?? '');
        const active = t !== undefined && t.exp > Date.now();
        return reply(res, 200, active ? { active: true, exp: Math.floor((t?.exp ?? 0) / 1000), ...(t?.subject ? { username: t.subject } : {}) } : { active: false });
      }
      reply(res, 404, { error: 'not_found' });
    }).catch(() => reply(res, 400, { error: 'invalid_request' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  tokenUrl = `http://127.0.0.1:${port}/token`;
  return {
    port,
    tokenUrl,
    stats,
    dovecotConf: () => [
      'introspection_mode = post',
      `introspection_url = http://127.0.0.1:${port}/introspect`,
      'force_introspection = yes',
      'active_attribute = active',
      'active_value = true',
      'username_attribute = username',
      '',
    ].join('\n'),
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
