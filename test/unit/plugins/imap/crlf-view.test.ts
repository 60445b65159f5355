// The IMAP view of a message (plugins/imap/message/crlf.ts): bare LF reads as CRLF, CRLF and lone CR
// stay, chunk boundaries (CR|LF split) change nothing, windows are taken in view offsets, skipped
// chunks are only counted, and a short source fails instead of shortening the window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { CrlfView, crlfView, viewLength, viewWindow } from '../../../../plugins/imap/message/crlf.ts';

const L = (s: string): Buffer => Buffer.from(s, 'latin1');
const pieces = (b: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));
const reference = (b: Buffer): Buffer => L(b.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'));
const collect = async (it: AsyncIterable<Buffer>): Promise<Buffer> => {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
};

const SAMPLES = [
  '',
  '\n',
  '\r',
  '\r\n',
  '\n\n\r\n\n',
  'a\nb\r\nc\rd\r\re\n\rf\n',
  'Subject: lf\n\nbody\nlast line without end',
  '\r\r\n\n\r',
  'x'.repeat(50) + '\n' + 'y'.repeat(3) + '\r\n' + '\n'.repeat(7),
];

test('bare LF becomes CRLF; CRLF and lone CR are kept', () => {
  assert.equal(new CrlfView().push(L('a\nb')).toString('latin1'), 'a\r\nb');
  assert.equal(new CrlfView().push(L('a\r\nb')).toString('latin1'), 'a\r\nb');
  assert.equal(new CrlfView().push(L('a\rb\r')).toString('latin1'), 'a\rb\r');
  assert.equal(new CrlfView().push(L('\n\n')).toString('latin1'), '\r\n\r\n');
  assert.equal(new CrlfView().push(L('\r\r\n\n')).toString('latin1'), '\r\r\n\r\n');
});

test('a chunk without bare LF is passed on as the same buffer (no copy)', () => {
  const v = new CrlfView();
  const crlf = L('line\r\nline\r\n');
  assert.equal(v.push(crlf), crlf);
  const plain = L('no line ends at all');
  assert.equal(v.push(plain), plain);
});

test('a CR at the end of one chunk and the LF at the start of the next are one CRLF', () => {
  const v = new CrlfView();
  assert.equal(v.push(L('a\r')).toString('latin1'), 'a\r');
  const lf = L('\nb');
  assert.equal(v.push(lf), lf, 'nothing to add: the LF follows a CR');
  assert.equal(v.push(L('\n')).toString('latin1'), '\r\n', 'after "b" the LF is bare');
  // A lone CR ending a chunk does not protect an LF that is not next to it.
  const w = new CrlfView();
  w.push(L('x\r'));
  assert.equal(w.push(L('y\n')).toString('latin1'), 'y\r\n');
  // An empty chunk between CR and LF changes nothing.
  const e = new CrlfView();
  e.push(L('\r'));
  e.push(Buffer.alloc(0));
  assert.equal(e.push(L('\n')).toString('latin1'), '\n');
});

test('any chunking gives the same view as converting the whole input at once', async () => {
  for (const s of SAMPLES) {
    const raw = L(s);
    const want = reference(raw);
    for (const n of [1, 2, 3, 7, 64]) {
      assert.deepEqual(await collect(crlfView(Readable.from(pieces(raw, n)))), want, `${JSON.stringify(s)} in pieces of ${n}`);
    }
    assert.equal(viewLength(raw), want.length, `viewLength of ${JSON.stringify(s)}`);
  }
});

test('skip() counts the view length and keeps the CR|LF state like push()', () => {
  const v = new CrlfView();
  assert.equal(v.skip(L('ab\r')), 3);
  assert.equal(v.skip(L('\n\n')), 3);
  assert.equal(v.push(L('\n')).toString('latin1'), '\r\n');
  const w = new CrlfView();
  w.skip(L('z\r'));
  const lf = L('\n');
  assert.equal(w.push(lf), lf);
});

test('crlfView accepts strings (latin1) and Uint8Arrays', async () => {
  const src = async function* (): AsyncGenerator<unknown> {
    yield 'a\n\xe9';
    yield new Uint8Array([0x0a, 0x62]);
  };
  assert.equal((await collect(crlfView(src()))).toString('latin1'), 'a\r\n\xe9\r\nb');
});

test('viewWindow serves every window in view offsets, whatever the chunking', async () => {
  const raw = L('Subject: lf\n\nline one\r\nline two\nend\r\rx\n');
  const view = reference(raw);
  for (const n of [1, 3, 5, 1000]) {
    for (let start = 0; start <= view.length; start += 3) {
      for (const len of [1, 4, 9, 100]) {
        const end = Math.min(view.length, start + len);
        const got = await collect(viewWindow(Readable.from(pieces(raw, n)), start, end));
        assert.deepEqual(got, view.subarray(start, end), `[${start}, ${end}) in pieces of ${n}`);
      }
    }
  }
});

test('viewWindow skips whole chunks before the window by counting, and stops reading after it', async () => {
  const chunk = L('a\n'.repeat(1000));
  let read = 0;
  const src = Readable.from((function* () {
    for (let i = 0; i < 100; i++) {
      read++;
      yield chunk;
    }
  })());
  // Each chunk is 3000 view bytes; the window lies in the 51st chunk.
  const got = await collect(viewWindow(src, 50 * 3000 + 1, 50 * 3000 + 7));
  assert.equal(got.toString('latin1'), '\r\na\r\na');
  assert.ok(read < 100, `read ${read} chunks of 100`);
  assert.ok(src.destroyed, 'the source is destroyed once the window is served');
});

test('viewWindow fails when the source ends before the window does; an empty window reads nothing', async () => {
  await assert.rejects(collect(viewWindow(Readable.from([L('ab\n')]), 0, 5)), /shorter \(4 bytes\).*\(5\)/);
  let opened = false;
  const src = Readable.from((function* () {
    opened = true;
    yield L('x');
  })());
  assert.equal((await collect(viewWindow(src, 3, 3))).length, 0);
  assert.equal(opened, false);
});
