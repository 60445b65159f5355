// The multi-line body framer: terminator found across any chunk split, stuffing removed from the
// captured bytes and kept in the relayed ones, bytes after the terminator handed back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DotDecoder, dotStuff } from '../../../core/pop3/dot-decoder.ts';

function decodeAll(wire: Buffer, splits: number[]): { raw: Buffer; data: Buffer; done: boolean; rest: Buffer } {
  const d = new DotDecoder();
  const raw: Buffer[] = [];
  const data: Buffer[] = [];
  let rest = Buffer.alloc(0);
  let at = 0;
  for (const end of [...splits, wire.length]) {
    const part = d.feed(wire.subarray(at, end));
    raw.push(...part.raw);
    data.push(...part.data);
    if (part.done) rest = Buffer.concat([rest, part.rest]);
    at = end;
  }
  return { raw: Buffer.concat(raw), data: Buffer.concat(data), done: d.done, rest };
}

const MESSAGE = Buffer.from('Subject: x\r\n\r\n.one\r\n..two\r\n.\r\nend.\r\n.\r\n\r\nlast\r\n');

test('dotStuff doubles each leading dot; decoding gives the message back at every split point', () => {
  const stuffed = dotStuff(MESSAGE);
  assert.equal(stuffed.toString(), 'Subject: x\r\n\r\n..one\r\n...two\r\n..\r\nend.\r\n..\r\n\r\nlast\r\n');
  const wire = Buffer.concat([stuffed, Buffer.from('.\r\n+OK next')]);
  for (let a = 0; a <= wire.length; a++) {
    for (const b of [a, a + 1, a + 2, a + 3]) {
      const splits = [a, Math.min(b, wire.length)].filter((x, i, all) => i === 0 || x > (all[i - 1] ?? 0));
      const r = decodeAll(wire, splits);
      assert.ok(r.done, `done at split ${a}/${b}`);
      assert.deepEqual(r.data, MESSAGE, `data at split ${a}/${b}`);
      assert.deepEqual(r.raw, stuffed, `raw at split ${a}/${b}`);
      assert.equal(r.rest.toString(), '+OK next');
    }
  }
});

test('an empty body is just the terminator; a bare-LF terminator is accepted', () => {
  assert.deepEqual(decodeAll(Buffer.from('.\r\n'), []), { raw: Buffer.alloc(0), data: Buffer.alloc(0), done: true, rest: Buffer.alloc(0) });
  const r = decodeAll(Buffer.from('a\n..b\n.\n'), [1, 3]);
  assert.equal(r.data.toString(), 'a\n.b\n');
  assert.ok(r.done);
});

test('an unterminated body is not done and keeps at most the possible terminator back', () => {
  const d = new DotDecoder();
  const p1 = d.feed(Buffer.from('line\r\n.'));
  assert.equal(Buffer.concat(p1.raw).toString(), 'line\r\n');
  assert.equal(d.done, false);
  const p2 = d.feed(Buffer.from('\r'));
  assert.equal(p2.raw.length, 0);
  const p3 = d.feed(Buffer.from('x\r\n'));
  assert.equal(Buffer.concat(p3.raw).toString(), '.\rx\r\n');
  assert.equal(Buffer.concat(p3.data).toString(), '\rx\r\n');
  assert.equal(d.done, false);
  assert.equal(d.dataBytes, 'line\r\n\rx\r\n'.length);
});

test('a dot inside a line is never stuffing, and a feed after the end returns everything as rest', () => {
  const r = decodeAll(Buffer.from('a.b\r\n x.\r\n.\r\n'), []);
  assert.equal(r.data.toString(), 'a.b\r\n x.\r\n');
  const d = new DotDecoder();
  d.feed(Buffer.from('.\r\n'));
  assert.deepEqual(d.feed(Buffer.from('more')), { raw: [], data: [], done: true, rest: Buffer.from('more') });
});
