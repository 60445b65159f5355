// The Dovecot parity suite, SEARCH part: Postern's IMAP SEARCH against Debian's Dovecot 2.3 (the
// reference) on real-world messages nobody here wrote (search-parity.ts: a seeded pick of SpamAssassin
// corpus messages and the sample messages of Python's email tests) with a few hundred queries generated
// from their text as Python's email package decodes it. Both targets get the same bytes (Postern over
// SMTP, Dovecot as Maildir files); answers are compared per message identity (SHA-256 of BODY[]), not
// UID. The agreement is printed with every disagreeing class and must be at least 95 %, with at most
// 1 % of queries unexplained; the hand-made probes of each class of issue 15 must answer as Dovecot
// does, except where Dovecot is shown wrong (each such probe says why, and must still differ).
// Its own file (not imap-dovecot-parity.test.ts) so each gets the interop tier's per-file time budget.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { selectedTargets, sha, startDovecotTarget, startPosternTarget, type ImapTarget, type TargetName } from './imap-targets.ts';
import { classify, compareAnswers, corpusPick, decodeWithPython, describeQuery, distinct, generateQueries, glibcCharsets, pythonEmailSamples, runQueries, type Answers, type Query } from './search-parity.ts';
import { PROBES } from './search-probes.ts';

const SEARCH_SEED = 15;
const SEARCH_QUERIES = 400;
const REAL_WORLD = distinct([...pythonEmailSamples(), ...corpusPick(280, SEARCH_SEED)]);
const PROBE_QUERIES: Array<Query & { probe: string; dovecotWrong?: string }> = PROBES.flatMap((p) =>
  p.queries.map((x) => ({ kind: p.name, args: x.args, from: -1, probe: sha(p.message), ...(x.dovecotWrong ? { dovecotWrong: x.dovecotWrong } : {}) })));
let generated: Promise<Query[]> | undefined;
/** The generated queries (needles from Python's decoding of the messages), made once for both targets. */
const searchQueries = (): Promise<Query[]> => (generated ??= decodeWithPython(REAL_WORLD.map((m) => m.bytes))
  .then((decoded) => generateQueries(REAL_WORLD.map((m) => m.bytes), decoded, SEARCH_QUERIES, SEARCH_SEED)));
/** What each target answered: the generated queries over INBOX (the real-world messages), the probes over Sent (the probe messages). */
const searchAnswers = new Map<TargetName, { real: Answers; probes: Answers }>();

describe('SEARCH answers', () => {
  const targets: ImapTarget[] = [];
  const inbox = REAL_WORLD.map((m) => m.bytes);
  const probes = PROBES.map((p) => p.message);
  after(async () => {
    await Promise.all(targets.map((t) => t.stop()));
  });
  // Both targets at once, each answering from its own processes so the two cores work side by side;
  // Dovecot (up in a second) starts once Postern has booted, not to starve its start-up.
  test(`from ${selectedTargets().join(' and ')}: the generated queries and the class probes`, async (ctx) => {
    const queries = await searchQueries();
    let booted: () => void = () => undefined;
    let failed: (err: unknown) => void = () => undefined;
    const posternBooted = selectedTargets().includes('postern') ? new Promise<void>((resolve, reject) => { booted = resolve; failed = reject; }) : Promise.resolve();
    posternBooted.catch(() => undefined);
    await Promise.all(selectedTargets().map(async (name) => {
      if (name === 'dovecot') await posternBooted;
      const t0 = Date.now();
      const t = name === 'postern'
        ? await startPosternTarget(inbox, probes, { booted }).catch((err: unknown) => { failed(err); throw err; })
        : await startDovecotTarget(inbox, probes);
      targets.push(t);
      const t1 = Date.now();
      searchAnswers.set(name, { real: await runQueries(t, queries, inbox.length), probes: await runQueries(t, PROBE_QUERIES, probes.length, 'Sent') });
      ctx.diagnostic(`${name}: ${inbox.length} + ${probes.length} messages ready in ${t1 - t0} ms, ${queries.length} + ${PROBE_QUERIES.length} queries answered in ${Date.now() - t1} ms`);
    }));
  });
});

if (selectedTargets().length === 2) {
  describe('Postern SEARCH answers what Dovecot answers', () => {
    const pair = (which: 'real' | 'probes'): [Answers, Answers] => {
      const p = searchAnswers.get('postern');
      const d = searchAnswers.get('dovecot');
      assert.ok(p && d, 'both targets answered');
      return [p[which], d[which]];
    };
    test(`generated queries over ${REAL_WORLD.length} real-world messages agree at least 95 % of the time`, async (t) => {
      const [p, d] = pair('real');
      const queries = await searchQueries();
      const c = compareAnswers(queries, p, d);
      const classes = classify(c, new Map(REAL_WORLD.map((m) => [sha(m.bytes), m.bytes])), await glibcCharsets());
      const wrong = classes.filter((x) => x.dovecotWrong !== null).reduce((n, x) => n + x.queries.length, 0);
      t.diagnostic(`SEARCH agreement with Dovecot: ${c.percent.toFixed(1)} % (${c.agreeing} of ${c.total} queries, ${REAL_WORLD.length} messages); ` +
        `${(100 * (c.agreeing + wrong) / c.total).toFixed(1)} % counting the ${wrong} where Dovecot is wrong`);
      for (const x of classes) {
        t.diagnostic(`  ${x.queries.length} × ${x.name}${x.dovecotWrong ? ` (Dovecot wrong: ${x.dovecotWrong})` : ''}: ${x.queries.slice(0, 3).join(' | ')}`);
      }
      assert.ok(queries.length >= 400 && REAL_WORLD.length >= 300, `${queries.length} queries, ${REAL_WORLD.length} messages`);
      assert.ok(new Set(queries.map((q) => q.kind.split(' ')[0])).size >= 12, 'every key kind is generated');
      assert.ok(c.percent >= 95, `agreement ${c.percent.toFixed(1)} % is below 95 %`);
      assert.ok(c.total - c.agreeing - wrong <= c.total / 100, `unexplained disagreements: ${classes.filter((x) => !x.dovecotWrong).map((x) => `${x.name}: ${x.queries.join(' | ')}`).join('; ')}`);
    });
    test(`class probes (${PROBES.length} messages, ${PROBE_QUERIES.length} queries) answer as Dovecot, except where it is wrong`, async () => {
      const [p, d] = pair('probes');
      const found = (a: Answers, i: number, id: string): string => {
        const x = a[i];
        return Array.isArray(x) ? String(x.includes(id)) : `refused ${x?.refused}`;
      };
      const diffs: string[] = [];
      PROBE_QUERIES.forEach((q, i) => {
        const same = found(p, i, q.probe) === found(d, i, q.probe);
        if (same === (q.dovecotWrong !== undefined)) diffs.push(`[${q.kind}] ${describeQuery(q)}: postern ${found(p, i, q.probe)}, dovecot ${found(d, i, q.probe)}${q.dovecotWrong ? ' (documented as Dovecot wrong, but they agree)' : ''}`);
      });
      assert.deepEqual(diffs, []);
    });
  });
}
