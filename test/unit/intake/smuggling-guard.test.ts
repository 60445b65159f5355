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
