import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmugglingGuard } from '../../../core/intake/smuggling-guard.ts';

function scan(parts: string[]): SmugglingGuard {
  const g = new SmugglingGuard();
  for (const p of parts) g.scan(Buffer.from(p, 'latin1'));
  g.end();
  return g;
}

test('clean CRLF content, including a CRLF-framed dot line (from a dot-stuffed "..") is not smuggling', () => {
  const g = scan(['Subject: x\r\n\r\nline\r\n.\r\nmore\r\n']);
  assert.equal(g.smuggling, false);
  assert.equal(g.bareLineEnding, false);
});

for (const seq of ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r', '\r.\n']) {
  test(`dot framed as ${JSON.stringify(seq)} is smuggling`, () => {
    assert.equal(scan([`a${seq}b`]).smuggling, true);
  });
  test(`dot framed as ${JSON.stringify(seq)} is found across chunk boundaries`, () => {
    for (let cut = 1; cut < seq.length + 1; cut++) {
      const whole = `a${seq}b`;
      assert.equal(scan([whole.slice(0, cut), whole.slice(cut)]).smuggling, true, `cut at ${cut}`);
    }
  });
}

test('bare LF and bare CR are noted, without smuggling', () => {
  const lf = scan(['a\nb\r\n']);
  assert.equal(lf.bareLineEnding, true);
  assert.equal(lf.smuggling, false);
  assert.equal(scan(['a\rb\r\n']).bareLineEnding, true);
  assert.equal(scan(['a\r\n']).bareLineEnding, false);
  assert.equal(scan(['a\r', '\nb\r\n']).bareLineEnding, false);
  assert.equal(scan(['ends with cr\r']).bareLineEnding, true);
});

/** Byte-by-byte reference: every dot framed by CR/LF must be CRLF "." CRLF; every CR must precede LF. */
function reference(data: Buffer): { smuggling: boolean; bare: boolean } {
  let smuggling = false;
  let bare = false;
  const b = (i: number): number => (i >= 0 && i < data.length ? (data[i] as number) : -1);
  for (let i = 0; i < data.length; i++) {
    if (b(i) === 0x0a && b(i - 1) !== 0x0d) bare = true;
    if (b(i) === 0x0d && b(i + 1) !== 0x0a) bare = true;
    if (b(i) === 0x2e && [0x0d, 0x0a].includes(b(i - 1)) && [0x0d, 0x0a].includes(b(i + 1))) {
      if (!(b(i - 2) === 0x0d && b(i - 1) === 0x0a && b(i + 1) === 0x0d && b(i + 2) === 0x0a)) smuggling = true;
    }
  }
  return { smuggling, bare };
}

test('agrees with a byte-by-byte reference on random input split at random points', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = [0x0d, 0x0a, 0x2e, 0x61];
  for (let round = 0; round < 3000; round++) {
    const data = Buffer.from(Array.from({ length: 1 + rand(24) }, () => alphabet[rand(4)] as number));
    const g = new SmugglingGuard();
    let pos = 0;
    while (pos < data.length) {
      const len = 1 + rand(6);
      g.scan(data.subarray(pos, pos + len));
      pos += len;
    }
    g.end();
    const ref = reference(data);
    assert.deepEqual({ smuggling: g.smuggling, bare: g.bareLineEnding }, ref, JSON.stringify(data.toString('latin1')));
  }
});
