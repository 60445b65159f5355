// The IMAP tokenizer, command splitting and sequence-set resolution, with every malformed input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImapBad, parseCommand, parseSequenceSet, resolveSequence, resolveUids, tokenize, astring } from '../../../../plugins/imap/parser.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('IMAP tokenizer', () => {
  it('reads atoms, quoted strings, literals, lists and fetch sections', () => {
    const t = tokenize(b('a "q \\" \\\\ x" {3}\r\nx y (b (c)) BODY.PEEK[HEADER.FIELDS (From To)]<0.10> \\Seen NIL'));
    assert.deepEqual(t, [
      { t: 'atom', v: 'a' },
      { t: 'string', v: b('q " \\ x') },
      { t: 'string', v: b('x y') },
      { t: 'list', v: [{ t: 'atom', v: 'b' }, { t: 'list', v: [{ t: 'atom', v: 'c' }] }] },
      { t: 'atom', v: 'BODY.PEEK[HEADER.FIELDS (From To)]<0.10>' },
      { t: 'atom', v: '\\Seen' },
      { t: 'atom', v: 'NIL' },
    ]);
    assert.deepEqual(tokenize(b('{0+}\r\n')), [{ t: 'string', v: b('') }]);
    assert.equal(astring(tokenize(b('M\xc3\xa4rz'))[0], 'x'), 'März');
  });

  it('rejects malformed input', () => {
    for (const bad of ['"open', '"a\\b"', '(a', 'a)', '{3}\r\nab', '{x}\r\n', 'a"b"', '"a"b', 'BODY[HEADER', '\u0001', '"a\r\nb"', '('.repeat(40) + ')'.repeat(40)]) {
      assert.throws(() => tokenize(b(bad)), ImapBad, JSON.stringify(bad));
    }
  });

  it('splits tag, command and arguments and validates the tag', () => {
    assert.deepEqual(parseCommand(b('A1 fetch 1 FLAGS')).command, { tag: 'A1', name: 'FETCH', args: [{ t: 'atom', v: '1' }, { t: 'atom', v: 'FLAGS' }] });
    for (const [line, error] of [['', 'Invalid tag'], ['+ x', 'Invalid tag'], ['a*b x', 'Invalid tag'], ['a{ x', 'Invalid tag'], ['tag', 'Missing command'], ['t 1x', 'Missing or invalid command name'], ['t (x)', 'Missing or invalid command name']] as const) {
      const r = parseCommand(b(line));
      assert.equal(r.command, null, line);
      assert.equal(r.error, error, line);
    }
  });
});

describe('IMAP sequence sets', () => {
  it('parses numbers, ranges and *', () => {
    assert.deepEqual(parseSequenceSet('1,3:5,*,7:*'), [[1, 1], [3, 5], [0, 0], [7, 0]]);
    for (const bad of ['', '0', '1:0', 'a', '1,,2', '1:2:3', '-1', '1.5', '99999999999', '4294967296', ',1', '1,']) {
      assert.throws(() => parseSequenceSet(bad), ImapBad, bad);
    }
  });

  it('resolves message numbers within the mailbox and refuses numbers beyond it', () => {
    assert.deepEqual(resolveSequence(parseSequenceSet('3:1,2,*'), 5), [1, 2, 3, 5]);
    assert.deepEqual(resolveSequence(parseSequenceSet('4:*'), 5), [4, 5]);
    assert.deepEqual(resolveSequence(parseSequenceSet('1:*'), 0), []);
    assert.throws(() => resolveSequence(parseSequenceSet('6'), 5), ImapBad);
    assert.throws(() => resolveSequence(parseSequenceSet('1'), 0), ImapBad);
  });

  it('resolves UIDs, ignoring missing ones, with * as the largest UID', () => {
    const uids = [3, 7, 10, 20];
    assert.deepEqual(resolveUids(parseSequenceSet('1:8'), uids, 4), [1, 2]);
    assert.deepEqual(resolveUids(parseSequenceSet('100:*'), uids, 4), [4]);
    assert.deepEqual(resolveUids(parseSequenceSet('8,9,11'), uids, 4), []);
    assert.deepEqual(resolveUids(parseSequenceSet('20,3'), uids, 3), [1], 'only the snapshot counts');
    assert.deepEqual(resolveUids(parseSequenceSet('1:*'), [], 0), []);
  });
});

describe('sequence sets naming many ranges', () => {
  it('list each message once, ascending, whatever the order and overlap of the ranges', () => {
    assert.deepEqual(resolveSequence(parseSequenceSet('7:5,1,3:4,5,*'), 8), [1, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(resolveSequence(parseSequenceSet('2:*'), 4), [2, 3, 4]);
    const uids = [3, 8, 9, 20, 21, 40];
    assert.deepEqual(resolveUids(parseSequenceSet('21:8,1:3,100:*,9'), uids, uids.length), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(resolveUids(parseSequenceSet('10:19'), uids, uids.length), []);
    assert.deepEqual(resolveUids(parseSequenceSet('10:19,41:50'), uids, uids.length), [], 'ranges holding no UID name nothing');
    assert.deepEqual(resolveUids(parseSequenceSet('9,3'), uids, uids.length), [1, 3]);
  });
});
