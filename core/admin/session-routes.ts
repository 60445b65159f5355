// Admin API routes of API sessions (core/admin/sessions.ts), in the reserved area `sessions` (every
// signed-in user reaches it; the routes check the rest themselves):
//   POST   sessions            a token for the user signed in with name and password (HTTP Basic), shown once
//   GET    sessions            one's own open sessions (the admin token and administrators: everyone's)
//   DELETE sessions/current    end the session the request is signed in with (`postern logout`)
//   DELETE sessions/:id        end one of one's own sessions (administrators: anyone's)
// Making a session is audited once, here (login/api.session.create, with its id and expiry); the
// Basic sign-in that made it is not recorded again, and requests with the token are not audited as
// sign-ins at all. Ending one is recorded by the admin request audit like any change.
import { z } from 'zod';
import type { AuditLog } from '../audit/types.ts';
import { PosternError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ArchiveStore } from '../storage/types.ts';
import { TOKEN_PRINCIPAL, privilegesOf } from '../compliance/access.ts';
import { readJson, validated } from './http.ts';
import type { AdminRoutes, RouteContext } from './routes.ts';
import type { ApiSessions } from './sessions.ts';

export const SESSIONS_AREA = 'sessions';
export const createSessionBody = z.strictObject({
  label: z.string().max(100).regex(/^[^\u0000-\u001f\u007f]*$/u, 'must not contain control characters').optional().describe('a note shown in the session list, e.g. "cli on host"'),
});

export function addSessionRoutes(routes: AdminRoutes, deps: { sessions: ApiSessions; archive: ArchiveStore; audit: () => AuditLog | null; log: Logger }): void {
  const { sessions, archive } = deps;
  routes.reserve([SESSIONS_AREA], 'core');
  const seesAll = async (principal: string): Promise<boolean> => principal === TOKEN_PRINCIPAL || (await privilegesOf(archive, principal)).has('admin');
  const remote = (ctx: RouteContext): string => ctx.req.socket?.remoteAddress ?? '';

  routes.add('POST', SESSIONS_AREA, async (ctx) => {
    const body = validated(createSessionBody, await readJson(ctx.req));
    if (ctx.principal === TOKEN_PRINCIPAL) throw new PosternError('INVALID_INPUT', 'The admin token needs no session: sessions are for users signing in with a name and password');
    if (ctx.sessionId !== undefined) throw new PosternError('FORBIDDEN', 'A session cannot make another: sign in with name and password (HTTP Basic)');
    const user = await archive.getUser(ctx.principal);
    if (!user) throw new PosternError('FORBIDDEN', `User "${ctx.principal}" no longer exists`);
    const { session, token } = await sessions.create(user, remote(ctx), body.label ?? '');
    try {
      await deps.audit()?.record({
        category: 'login', action: 'api.session.create', actor: user.name, target: session.id, outcome: 'success', remote: remote(ctx),
        details: { expiresAt: session.expiresAt, ...(session.label ? { label: session.label } : {}) },
      });
    } catch (err) {
      // A session nobody can account for must not exist.
      await sessions.revoke(session.id);
      throw err;
    }
    deps.log.info('API session created', { user: user.name, session: session.id, expiresAt: session.expiresAt });
    return { status: 201, body: { session, token } };
  }, 'core', {
    summary: 'Make an API token for the signed-in user (HTTP Basic), valid for admin.sessionHours; the token is shown only in this answer',
    access: ['user'], accessNote: 'any user with the login privilege, signed in with name and password (not with the admin token or another session); throttled like every sign-in',
    body: createSessionBody, responses: { 201: 'the session and its token', 400: 'invalid body, or the admin token', 413: 'body too large', 503: 'too many open sessions' },
  });

  routes.add('GET', SESSIONS_AREA, async ({ principal }) => ({ body: { sessions: sessions.list((await seesAll(principal)) ? null : principal) } }), 'core', {
    summary: 'Open API sessions (never their tokens)', access: ['user'], accessNote: 'a user sees their own; the admin token and administrators see everyone\'s', responses: { 200: 'the sessions' },
  });

  routes.add('DELETE', `${SESSIONS_AREA}/current`, async (ctx) => {
    if (ctx.sessionId === undefined) throw new PosternError('INVALID_INPUT', 'This request is not signed in with an API session token');
    await sessions.revoke(ctx.sessionId);
    return { body: { removed: ctx.sessionId } };
  }, 'core', {
    summary: 'End the session this request is signed in with (postern logout)', access: ['user'], accessNote: 'requests signed in with an API session token',
    responses: { 200: 'ended', 400: 'not signed in with a session token' },
  });

  routes.add('DELETE', `${SESSIONS_AREA}/:id`, async (ctx) => {
    const id = ctx.params.id ?? '';
    const session = sessions.get(id);
    // Someone else's session is as unknown as a missing one, unless the caller may see it.
    if (!session || (session.user !== ctx.principal && !(await seesAll(ctx.principal)))) throw new PosternError('NOT_FOUND', `No open API session "${id.slice(0, 64)}"`);
    await sessions.revoke(id);
    return { body: { removed: id } };
  }, 'core', {
    summary: 'End an API session at once', access: ['user'], accessNote: 'one\'s own sessions; the admin token and administrators any session',
    responses: { 200: 'ended', 404: 'no such open session (or another user\'s)' },
  });
}
