// The web access in a real browser: Debian's chromium driven by puppeteer-core (nothing downloads a
// browser) at 360 px wide. Signs in by keyboard, searches, shows a failed search, reaches and opens a
// hostile HTML mail by keyboard whose body tries every way to fetch from elsewhere (tracking pixel, CSS
// url(), srcset, link, iframe …), downloads the attachment and the original (byte-identical, fetched
// through the signed-in page), reads a message with JavaScript off, exports the search, two checked
// messages and a folder,
// checks the desktop layout (help beside the results), signs out, and shows the "session ended" page.
// Every request the browser makes is intercepted: none may leave for another host. Checks keyboard
// access (the first Tab reaches the skip link) and that no page scrolls sideways at 360 px. A screenshot
// of each step is kept as a test artifact in .tmp/artifacts/web-chromium/ (replaced by the next run).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { mail, PASSWORD, startWebServer, type WebTestServer } from '../protocol/web-client.ts';
import { HOSTILE, PDF } from '../protocol/web-fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../.tmp/artifacts/web-chromium/', import.meta.url));

describe('web access in headless Chromium', { skip: existsSync(CHROMIUM) ? false : 'Debian chromium is not installed (test/interop/install-deps.sh)' }, () => {
  let s: WebTestServer;
  let browser: Browser;
  let page: Page;
  let profile: string;
  const shots = ARTIFACTS;
  const remote: string[] = [];
  const seen: string[] = [];
  let step = 0;
  const shot = async (name: string): Promise<void> => {
    const file = join(shots, `${String(++step).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(statSync(file).size > 1000, `screenshot ${file}`);
  };
  const noSideways = async (what: string): Promise<void> => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `${what}: the page is ${width} px wide at a 360 px viewport`);
  };

  before(async () => {
    rmSync(shots, { recursive: true, force: true });
    mkdirSync(shots, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'postern-web-chromium-'));
    s = await startWebServer([{ name: 'alice', addresses: ['alice@example.com'], privileges: ['export'] }]);
    await s.file('alice', 'Inbox', HOSTILE);
    for (let i = 1; i <= 3; i++) await s.file('alice', 'Inbox', mail({ from: 'Carol <carol@example.net>', to: 'alice@example.com', subject: `Quarterly newsletter ${i}`, body: 'figures' }));
    await s.indexed();
    browser = await puppeteer.launch({
      executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'], userDataDir: profile,
    });
    page = await browser.newPage();
    await page.setViewport({ width: 360, height: 740 });
    await page.setRequestInterception(true);
    const origin = new URL(s.base).host;
    page.on('request', (req) => {
      const url = req.url();
      seen.push(url);
      if (url.startsWith('data:') || new URL(url).host === origin) void req.continue();
      else {
        remote.push(url);
        void req.abort();
      }
    });
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
    rmSync(profile, { recursive: true, force: true });
    process.stdout.write(`# screenshots in ${shots}\n`);
  });

  it('signs in, searches, opens a hostile mail without any remote request, downloads, exports and signs out', async () => {
    await page.goto(`${s.base}/search`);
    assert.match(page.url(), /\/signin\?next=%2Fsearch$/);
    await shot('sign-in');
    // Keyboard only: the name field has the focus, Tab reaches the password, Enter submits.
    await page.waitForFunction(() => document.activeElement?.id === 'user');
    await page.keyboard.type('alice');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'password');
    await page.keyboard.type(PASSWORD);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    assert.match(page.url(), /\/search$/);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');

    await page.type('#q', 'newsletter');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    const results = await page.$$eval('table.list tbody tr', (rows) => rows.length);
    assert.equal(results, 4);
    await noSideways('search results');
    await shot('search-results');

    // A failed search: a clear page with the error and its position, the box keeping the query.
    await page.goto(`${s.base}/search?q=${encodeURIComponent('newsletter OR budget)')}`);
    assert.match(await page.$eval('.notice.error', (e) => e.textContent ?? ''), /The search failed: .*position 21/);
    assert.equal(await page.$eval('#q', (e) => (e as HTMLInputElement).value), 'newsletter OR budget)');
    await noSideways('failed search');
    await shot('failed-search');
    await page.goBack();

    // Keyboard only: Tab through the page to the hostile mail's link and open it with Enter.
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => (document.activeElement as HTMLAnchorElement | null)?.href?.includes('uid=1') ?? false);
    }
    assert.ok(reached, 'Tab reaches the first result');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    assert.match(page.url(), /\/message\?user=alice&folder=Inbox&uid=1$/);
    const frameHandle = await page.waitForSelector('iframe.mail-html');
    const frame = await frameHandle?.contentFrame();
    assert.ok(frame);
    await frame.waitForSelector('h1');
    const inside = await frame.evaluate(() => ({
      text: document.body.innerText,
      images: [...document.images].map((i) => i.src.slice(0, 30)),
      scripts: document.scripts.length,
    }));
    assert.match(inside.text, /Visible text of the newsletter/);
    assert.equal(inside.scripts, 0);
    assert.ok(inside.images.every((src) => src.startsWith('data:image/')), inside.images.join(', '));
    await noSideways('message');
    await shot('message');

    // The attachment and the original, fetched as the signed-in browser would download them.
    const hrefs = await page.$$eval('a[download]', (as) => as.map((a) => (a as HTMLAnchorElement).href));
    // The page's CSP allows no fetch() from script: download with the browser's own (HttpOnly) cookie.
    const cookie = (await page.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const download = async (url: string): Promise<Buffer> => {
      const res = await fetch(url, { headers: { cookie } });
      assert.equal(res.status, 200, url);
      assert.match(res.headers.get('content-disposition') ?? '', /^attachment;/);
      return Buffer.from(await res.arrayBuffer());
    };
    const fetchHex = async (url: string): Promise<string> => createHash('sha256').update(await download(url)).digest('hex');
    assert.equal(await page.evaluate(async (u) => fetch(u).then(() => 'fetched', () => 'blocked'), hrefs[0] ?? ''), 'blocked', 'the CSP blocks script fetches');
    const original = hrefs.find((h) => h.includes('/message/raw'));
    const attachment = hrefs.find((h) => h.includes('/message/part') && !h.endsWith('part=4'));
    assert.ok(original && attachment, hrefs.join(', '));
    const entry = await s.archive.getEntry('alice', 'Inbox', 1);
    const message = await s.archive.getMessage(entry?.messageId ?? '');
    assert.equal(await fetchHex(original), message?.blobId, 'the original is byte-identical');
    const attachments = await Promise.all(hrefs.filter((h) => h.includes('/message/part')).map(fetchHex));
    assert.ok(attachments.includes(createHash('sha256').update(PDF).digest('hex')), 'the PDF attachment is byte-identical');

    // The message view is readable without JavaScript (the pages carry no script at all).
    await page.setJavaScriptEnabled(false);
    await page.goto(`${s.base}/message?user=alice&folder=Inbox&uid=2`);
    const noScript = await page.content();
    assert.match(noScript, /<h1[^>]*>Quarterly newsletter 1<\/h1>/);
    assert.match(noScript, /<pre class="mail-text">figures/);
    assert.match(noScript, /carol@example\.net/);
    assert.doesNotMatch(noScript, /<script/i);
    await shot('message-without-javascript');
    await page.setJavaScriptEnabled(true);

    // Export the search and follow it to the download link.
    await page.goto(`${s.base}/search?q=newsletter`);
    await Promise.all([page.waitForNavigation(), page.click('form[action="/exports"] button')]);
    await page.waitForSelector('a[href^="/exports/file"]', { timeout: 30_000 });
    await shot('export');
    const exportHref = await page.$eval('a[href^="/exports/file"]', (a) => (a as HTMLAnchorElement).href);
    assert.ok((await download(exportHref)).length > HOSTILE.length);

    // Export a selection: two boxes of the result list (they belong to the export form below the table).
    await page.goto(`${s.base}/search?q=newsletter`);
    await page.click('input[name="pick"][value="1:alice:Inbox"]');
    await page.focus('input[name="pick"][value="3:alice:Inbox"]');
    await page.keyboard.press('Space');
    await Promise.all([page.waitForNavigation(), page.click('button[name="picked"]')]);
    await page.waitForSelector('a[href^="/exports/file"]', { timeout: 30_000 });
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), /Export of 2 selected messages/);
    await shot('selection-export');
    const pickedMbox = (await download(await page.$eval('a[href^="/exports/file"]', (a) => (a as HTMLAnchorElement).href))).toString('utf8');
    assert.deepEqual([...pickedMbox.matchAll(/^Subject: (.*)$/gm)].map((m) => m[1]?.trim()).sort(), ['Hostile newsletter', 'Quarterly newsletter 2']);

    // Export a whole folder: Archives, the folder, its export button.
    await page.goto(`${s.base}/archives`);
    await Promise.all([page.waitForNavigation(), page.click('a[href^="/folder"]')]);
    assert.match(page.url(), /\/folder\?user=alice&folder=Inbox$/);
    await noSideways('folder');
    await shot('folder');
    await Promise.all([page.waitForNavigation(), page.click('form.export button')]);
    await page.waitForSelector('a[href^="/exports/file"]', { timeout: 30_000 });
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), /Export of archive of alice \/ Inbox/);
    await shot('folder-export');
    const folderMbox = (await download(await page.$eval('a[href^="/exports/file"]', (a) => (a as HTMLAnchorElement).href))).toString('utf8');
    assert.deepEqual([...folderMbox.matchAll(/^Subject: (.*)$/gm)].map((m) => m[1]?.trim()).sort(),
      ['Hostile newsletter', 'Quarterly newsletter 1', 'Quarterly newsletter 2', 'Quarterly newsletter 3']);

    // On a desktop the query help stands beside the results, and nothing scrolls sideways.
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(`${s.base}/search?q=newsletter`);
    const layout = await page.evaluate(() => ({
      width: document.documentElement.scrollWidth,
      form: document.querySelector('form.search')?.getBoundingClientRect().right ?? 0,
      help: document.querySelector('aside.help')?.getBoundingClientRect().left ?? 0,
    }));
    assert.ok(layout.width <= 1280, `desktop: ${layout.width} px wide`);
    assert.ok(layout.help >= layout.form, `the help (left ${layout.help}) stands beside the search (right ${layout.form})`);
    await shot('desktop');
    await page.setViewport({ width: 360, height: 740 });

    await page.goto(`${s.base}/archives`);
    await noSideways('archives');
    await Promise.all([page.waitForNavigation(), page.click('form.signout button')]);
    assert.match(page.url(), /\/signin\?signedout=1$/);
    await shot('signed-out');
    await page.goto(`${s.base}/archives`);
    assert.match(page.url(), /\/signin/);
    // A cookie naming an ended session: a clear page that offers to sign in again.
    await page.setCookie({ name: 'postern', value: 'A'.repeat(43), url: s.base });
    const ended = await page.goto(`${s.base}/archives`);
    assert.equal(ended?.status(), 401);
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), /Your session has ended/);
    assert.ok(await page.$('a[href="/signin?next=%2Farchives"]'));
    await noSideways('session ended');
    await shot('session-ended');

    assert.deepEqual(remote, [], `requests to other hosts: ${remote.join(', ')}`);
    assert.ok(seen.some((u) => u.includes('/message/html')), 'the framed body was loaded');
    assert.ok(!seen.some((u) => u.includes('evil.example')));
  });
});
