// The streaming command reader: commands split across chunks, literals (synchronising and LITERAL+),
// oversized literals and lines, raw lines, and the end of the stream.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { CommandReader } from '../../../../plugins/imap/reader.ts';

function reader(limits = { maxLineBytes: 100, maxLiteralBytes: 50, maxCommandBytes: 200 }) {
  const stream = new PassThrough();
  const continuations: number[] = [];
  const r = new CommandReader(limits, {
    continuation: () => continuations.push(1),
    refuseLiteral: (line) => (line.toString().includes('APPEND') ? { status: 'NO', text: 'no appends' } : null),
  });
  r.attach(stream);
  return { r, stream, continuations };
}

describe('IMAP command reader', () => {
  it('assembles commands across chunks, with literals kept verbatim', async () => {
    const { r, stream, continuations } = reader();
    stream.write('A1 NO');
    stream.write('OP\r\nA2 LOGIN {3}\r\n');
    assert.deepEqual(await r.next(), { kind: 'command', data: Buffer.from('A1 NOOP') });
    const p = r.next();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(continuations.length, 1);
    stream.write('abc {2+}\r\nxy\r\n');
    assert.deepEqual(await p, { kind: 'command', data: Buffer.from('A2 LOGIN {3}\r\nabc {2+}\r\nxy') });
    assert.equal(continuations.length, 1, 'no continuation for LITERAL+');
    stream.write('A3 X\nA4 Y\r\n');
    assert.equal((await r.next()).kind, 'command');
    assert.deepEqual(await r.next(), { kind: 'command', data: Buffer.from('A4 Y') });
  });

  it('refuses oversized literals: synchronising ones unread, LITERAL+ fatally', async () => {
    const { r, stream, continuations } = reader();
    stream.write('T1 LOGIN {51}\r\nT2 NOOP\r\n');
    assert.deepEqual(await r.next(), { kind: 'error', tag: 'T1', status: 'NO', text: '[TOOBIG] Literal of 51 bytes exceeds the limit of 50 bytes', fatal: false });
    assert.deepEqual(await r.next(), { kind: 'command', data: Buffer.from('T2 NOOP') });
    stream.write('T3 APPEND INBOX {10}\r\n');
    assert.deepEqual(await r.next(), { kind: 'error', tag: 'T3', status: 'NO', text: 'no appends', fatal: false });
    assert.equal(continuations.length, 0);
    stream.write('T4 LOGIN {51+}\r\n');
    const e = await r.next();
    assert.equal(e.kind === 'error' && e.fatal, true);
  });

  it('bounds the whole command and each line', async () => {
    let { r, stream } = reader();
    stream.write('T1 X {50+}\r\n' + 'a'.repeat(50) + ' {50+}\r\n' + 'b'.repeat(50) + ' {50+}\r\n' + 'c'.repeat(50) + ' {50+}\r\n');
    let e = await r.next();
    assert.equal(e.kind === 'error' && e.fatal, true);
    ({ r, stream } = reader());
    stream.write('x'.repeat(101));
    e = await r.next();
    assert.deepEqual(e, { kind: 'error', tag: null, status: 'BAD', text: 'Line longer than 100 bytes', fatal: true });
  });

  it('reads raw lines (continuations) and reports the end of the stream', async () => {
    const { r, stream } = reader();
    stream.write('DONE\r\npartial');
    assert.deepEqual(await r.next('line'), { kind: 'line', data: Buffer.from('DONE') });
    stream.end();
    assert.deepEqual(await r.next(), { kind: 'end' });
  });

  it('waits for a literal that is announced but not sent, holding no more than was sent', async () => {
    const { r, stream } = reader();
    stream.write('T1 LOGIN {40}\r\nshort');
    const p = r.next();
    const outcome = await Promise.race([p.then(() => 'answered'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 50))]);
    assert.equal(outcome, 'waiting');
    assert.equal(r.pending(), 'T1 LOGIN {40}\r\nshort'.length);
    stream.end();
    assert.deepEqual(await p, { kind: 'end' });
  });
});
