// Interop with Python's imaplib (python3 from Debian) against Postern's imap plugin and, as the
// reference, a private Dovecot with the same corpus messages: STARTTLS then LOGIN (certificate
// verified), CAPABILITY, LIST, SELECT read-only, FETCH (RFC822, BODY.PEEK[HEADER], RFC822.SIZE, UID),
// SEARCH/UID SEARCH with CHARSET UTF-8, refused writes, and IDLE sent as a raw command: the script
// reports when it idles, the test delivers a message, the script must see "* n EXISTS", end with
// DONE and fetch the new message. Bodies are byte-compared with the originals here in Node.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTempDir } from './harness.ts';
import { byHash, corpusSample, matchOriginal, selectedTargets, startTarget, type ImapTarget } from './imap-targets.ts';

const N = 10;
const INBOX = corpusSample(N);
const ORIGINALS = byHash(INBOX);

// Reads its parameters from argv as JSON, prints progress lines and one final JSON line.
const SCRIPT = String.raw`
import base64, imaplib, json, ssl, sys, time
p = json.loads(sys.argv[1])
out = {}
ctx = ssl.create_default_context(cafile=p["ca"])
ctx.check_hostname = False
M = imaplib.IMAP4(p["host"], p["port"], timeout=30)
out["pre_caps"] = sorted(M.capabilities)
M.starttls(ssl_context=ctx)
typ, data = M.login(p["user"], p["password"])
out["login"] = typ
typ, caps = M.capability()
out["caps"] = caps[0].decode().split()
typ, data = M.list()
out["list"] = [d.decode() for d in data]
typ, data = M.select("INBOX", readonly=True)
out["select"] = [typ, int(data[0])]
out["select_untagged"] = {k.decode() if isinstance(k, bytes) else k: [x.decode(errors="replace") if isinstance(x, bytes) else str(x) for x in v] for k, v in M.untagged_responses.items()}
typ, data = M.search(None, "ALL")
seqs = data[0].split()
out["search_all"] = [int(x) for x in seqs]
typ, data = M.uid("SEARCH", "CHARSET", "UTF-8", "LARGER", str(p["larger"]))
out["uid_search_larger"] = [int(x) for x in data[0].split()]
bodies = {}
for s in seqs:
    typ, data = M.fetch(s, "(UID RFC822.SIZE RFC822 BODY.PEEK[HEADER])")
    assert typ == "OK", (typ, data)
    lits = [d for d in data if isinstance(d, tuple)]
    meta = " ".join(d[0].decode() for d in lits)
    uid = int(meta.split("UID ")[1].split()[0])
    size = int(meta.split("RFC822.SIZE ")[1].split()[0])
    full = [d[1] for d in lits if "RFC822 {" in d[0].decode() or d[0].decode().rstrip().endswith("RFC822 {%d}" % len(d[1]))]
    header = [d[1] for d in lits if "HEADER]" in d[0].decode()]
    bodies[str(uid)] = {"size": size, "body": base64.b64encode(full[0]).decode() if full else None, "header": base64.b64encode(header[0]).decode() if header else None}
out["bodies"] = bodies
# Writes must be refused with a tagged NO.
for name, args in (("store", ("1", "+FLAGS", "(\\Deleted)")), ("copy", ("1", "Sent")), ("expunge", ()), ("create", ("NewBox",))):
    try:
        typ, data = getattr(M, name)(*args)
        out["refused_" + name] = [typ, b" ".join(x for x in data if isinstance(x, bytes)).decode(errors="replace")]
    except (M.error, M.readonly) as e:
        out["refused_" + name] = ["EXC", str(e)]
# IDLE by raw command.
tag = M._new_tag().decode()
M.send(("%s IDLE\r\n" % tag).encode())
line = M.readline().decode()
out["idle_cont"] = line.strip()
print("IDLING", flush=True)
exists = None
deadline = time.time() + 25
M.sock.settimeout(25)
while time.time() < deadline:
    line = M.readline().decode()
    if not line:
        break
    if line.startswith("* ") and line.rstrip().endswith(" EXISTS"):
        exists = int(line.split()[1])
        break
out["idle_exists"] = exists
M.send(b"DONE\r\n")
while True:
    line = M.readline().decode()
    if line.startswith(tag):
        out["idle_done"] = line.strip()
        break
if exists:
    typ, data = M.fetch(str(exists), "(RFC822)")
    out["new_body"] = base64.b64encode([d for d in data if isinstance(d, tuple)][0][1]).decode()
M.close()
M.logout()
print("RESULT " + json.dumps(out), flush=True)
`;

interface Result {
  pre_caps: string[];
  login: string;
  caps: string[];
  list: string[];
  select: [string, number];
  select_untagged: Record<string, string[]>;
  search_all: number[];
  uid_search_larger: number[];
  bodies: Record<string, { size: number; body: string | null; header: string | null }>;
  idle_cont: string;
  idle_exists: number | null;
  idle_done: string;
  new_body?: string;
  [k: `refused_${string}`]: [string, string];
}

const tmp = makeTempDir('imaplib-');
const scriptFile = join(tmp.path, 'client.py');
writeFileSync(scriptFile, SCRIPT);
after(() => tmp.cleanup());

/** Runs the script; calls onIdle when it reports IDLING; resolves with its result. */
function runScript(params: unknown, onIdle: () => Promise<void>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [scriptFile, JSON.stringify(params)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let idleErr: Error | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => { stderr += d; });
    child.stdout.on('data', (d: string) => {
      const before = stdout;
      stdout += d;
      if (!before.includes('IDLING\n') && stdout.includes('IDLING\n')) onIdle().catch((e: Error) => { idleErr = e; });
    });
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (idleErr) return reject(idleErr);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) return reject(new Error(`python3 imaplib script exited ${code}\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr}`));
      resolve(JSON.parse(line.slice('RESULT '.length)) as Result);
    });
  });
}

for (const name of selectedTargets()) {
  describe(`Python imaplib against ${name}`, () => {
    let t: ImapTarget;
    let r: Result;
    const fresh = Buffer.from(`From: py@outside.test\r\nTo: alice@example.test\r\nSubject: imaplib idle ${name}\r\nMessage-ID: <imaplib-${name}-${Date.now()}@outside.test>\r\n\r\nArrives during a raw IDLE.\r\n`);
    const larger = [...INBOX].map((m) => m.length).sort((a, b) => a - b)[Math.floor(N / 2)]!;

    before(async () => {
      t = await startTarget(name, INBOX, []);
      try {
        r = await runScript({ host: t.host, port: t.port, ca: t.caFile, user: t.user, password: t.password, larger }, () => t.deliver(fresh));
      } catch (e) {
        const err = e as Error;
        err.message += `\n--- ${name} log tail ---\n${t.logs().split('\n').slice(-30).join('\n')}`;
        throw err;
      }
    });
    after(async () => { await t?.stop(); });

    test('STARTTLS is offered and LOGIN succeeds after it', () => {
      assert.ok(r.pre_caps.includes('STARTTLS'), `pre-login capabilities: ${r.pre_caps.join(' ')}`);
      assert.equal(r.login, 'OK');
      const caps = r.caps.map((c) => c.toUpperCase());
      assert.ok(caps.includes('IMAP4REV1'), `capabilities: ${r.caps.join(' ')}`);
      assert.ok(caps.includes('IDLE'));
    });

    test('LIST names INBOX', () => {
      assert.ok(r.list.some((l) => /"\/" "?INBOX"?$/.test(l)), r.list.join('\n'));
    });

    test('SELECT read-only reports the message count and READ-ONLY', () => {
      assert.deepEqual(r.select, ['OK', N]);
      assert.deepEqual(r.search_all, Array.from({ length: N }, (_, i) => i + 1));
      assert.ok(JSON.stringify(r.select_untagged).includes('READ-ONLY'), JSON.stringify(r.select_untagged));
    });

    test('FETCH RFC822 and BODY.PEEK[HEADER] equal the originals; sizes match', () => {
      const uids = Object.keys(r.bodies);
      assert.equal(uids.length, N);
      const seen = new Set<Buffer>();
      for (const [uid, b] of Object.entries(r.bodies)) {
        assert.ok(b.body, `UID ${uid} RFC822 returned`);
        const got = Buffer.from(b.body, 'base64');
        const orig = matchOriginal(ORIGINALS, got, `UID ${uid}`);
        seen.add(orig);
        assert.equal(b.size, orig.length);
        assert.ok(b.header && Buffer.from(b.header, 'base64').equals(orig.subarray(0, orig.indexOf('\r\n\r\n') + 4)), `UID ${uid} header`);
      }
      assert.equal(seen.size, N);
    });

    test('UID SEARCH CHARSET UTF-8 LARGER matches the sizes', () => {
      const want = Object.entries(r.bodies).filter(([, b]) => b.size > larger).map(([u]) => Number(u)).sort((a, b) => a - b);
      assert.deepEqual([...r.uid_search_larger].sort((a, b) => a - b), want);
    });

    // Dovecot is a writable server: only Postern must refuse.
    if (name === 'postern') test('STORE \\Deleted, COPY, EXPUNGE and CREATE are refused with NO [CANNOT]', () => {
      for (const op of ['store', 'copy', 'expunge', 'create']) {
        const v = r[`refused_${op}`];
        assert.ok(v, `${op} attempted`);
        assert.equal(v[0], 'NO', `${op} gets a tagged NO: ${JSON.stringify(v)}`);
        assert.match(v[1], /^\[(CANNOT|READ-ONLY|NOPERM)\]/, `${op}: a response code clients understand`);
      }
    });

    test('raw IDLE: continuation, EXISTS for the delivered message, DONE, then it fetches byte-exact', () => {
      assert.match(r.idle_cont, /^\+/);
      assert.equal(r.idle_exists, N + 1);
      assert.match(r.idle_done, /^\S+ OK/);
      assert.ok(r.new_body && Buffer.from(r.new_body, 'base64').equals(fresh), 'the new message');
    });
  });
}
