// Sign-in and sign-out pages. The sign-in form carries a CSRF token bound to a pre-session cookie
// (sessions.ts), so a foreign page cannot sign a browser in; a successful sign-in makes a new session id
// (no fixation) and goes to the page asked for (only a local path). Wrong credentials, missing web
// access and an unknown user all read the same; a throttled attempt gets 429 with Retry-After.
import { html, notice, page } from './html.ts';
import { webSignIn } from './sign-in.ts';
import { clearCookie, cookies, redirect, sendPage, setCookie, WebError, type PublicCtx } from './server.ts';
import { layoutUser, type WebDeps } from './deps.ts';

/** Only a path on this site (no scheme, no "//host", no backslashes). */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || /[\\\u0000-\u001f]/.test(next) || next.length > 2048) return '/search';
  if (next.startsWith('/signin') || next.startsWith('/signout')) return '/search';
  return next;
}

function signInForm(token: string, next: string, message: string | null, login = ''): string {
  return page('Sign in', null, html`<h1>Sign in to the mail archive</h1>
${message ? notice('error', message) : ''}
<form class="signin" method="post" action="/signin">
<input type="hidden" name="_csrf" value="${token}"><input type="hidden" name="next" value="${next}">
<p><label for="user">User name or address</label><input id="user" name="user" autocomplete="username" required autofocus value="${login}" maxlength="320"></p>
<p><label for="password">Archive password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"></p>
<p><button type="submit">Sign in</button></p>
</form>
<p class="hint">Use the same name and password as for IMAP. An administrator switches web access on with <code>postern user web NAME on</code>.</p>`);
}

export function addAuthPages(deps: WebDeps): void {
  const { server, sessions } = deps;

  server.addPublic('GET', '/signin', async (ctx: PublicCtx) => {
    const next = safeNext(ctx.url.searchParams.get('next'));
    const current = sessions.lookup(cookies(ctx.req)[server.cookieName]);
    if (current.kind === 'ok') return redirect(ctx.res, next, ctx.secure);
    const pre = sessions.newPreSession();
    const info = ctx.url.searchParams.get('signedout') === '1' ? 'You are signed out.' : null;
    let body = signInForm(sessions.preToken(pre), next, null);
    if (info) body = body.replace('<form class="signin"', `${notice('info', info).text}\n<form class="signin"`);
    sendPage(ctx.res, 200, body, ctx.secure, { 'set-cookie': setCookie(server.preCookieName, pre, ctx.secure) });
  });

  server.addPublic('POST', '/signin', async (ctx: PublicCtx) => {
    const pre = cookies(ctx.req)[server.preCookieName];
    const next = safeNext(ctx.form.get('next'));
    if (!sessions.checkPreToken(pre, ctx.form.get('_csrf') ?? undefined)) {
      throw new WebError(403, 'The sign-in form has expired or did not come from this site; open the sign-in page again.');
    }
    const login = (ctx.form.get('user') ?? '').slice(0, 320);
    const password = (ctx.form.get('password') ?? '').slice(0, 1024);
    const token = sessions.preToken(pre as string);
    if (login.trim() === '' || password === '') return sendPage(ctx.res, 400, signInForm(token, next, 'Enter your user name and password.', login), ctx.secure);
    const outcome = await webSignIn(deps.signIn, login, password, ctx.remote);
    if (!outcome.ok) {
      if (outcome.throttled) {
        return sendPage(ctx.res, 429, signInForm(token, next, `Too many sign-in attempts. Wait ${outcome.retryAfterSeconds} seconds and try again.`, login), ctx.secure,
          { 'retry-after': String(outcome.retryAfterSeconds) });
      }
      return sendPage(ctx.res, 401, signInForm(token, next, 'Wrong user name or password, or web access is not switched on for this user.', login), ctx.secure);
    }
    const session = sessions.create(outcome.user.name);
    redirect(ctx.res, next, ctx.secure, {
      'set-cookie': [setCookie(server.cookieName, session.id, ctx.secure), clearCookie(server.preCookieName, ctx.secure)],
    });
  });

  server.add('POST', '/signout', async (ctx) => {
    sessions.end(ctx.session.id);
    deps.log.info('Web sign-out', { user: ctx.user.name });
    redirect(ctx.res, '/signin?signedout=1', ctx.secure, { 'set-cookie': clearCookie(server.cookieName, ctx.secure) });
  });

  server.add('GET', '/', async (ctx) => redirect(ctx.res, '/search', ctx.secure));

  server.add('GET', '/account', async (ctx) => {
    const v = ctx.viewer;
    const privileges = ctx.user.privileges.length > 0 ? ctx.user.privileges.join(', ') : 'none';
    sendPage(ctx.res, 200, page('Account', layoutUser(ctx), html`<h1>${ctx.user.name}</h1>
<dl class="facts"><dt>Addresses</dt><dd>${ctx.user.addresses.join(', ') || '—'}</dd><dt>Privileges</dt><dd>${privileges}</dd>
<dt>Reads</dt><dd>${v.auditor ? 'every archive' : v.admin ? (deps.previewBlocking ? 'every archive (others\' mail: headers only, preview blocking)' : 'every archive') : 'your own archive'}</dd></dl>`), ctx.secure);
  });
}
