// Verdicts: what a gate hook may answer. Protocol outcomes are values, not exceptions.

export type Verdict =
  | { kind: 'accept' }
  | { kind: 'reject'; code: number; text: string }
  | { kind: 'tempfail'; code: number; text: string }
  | { kind: 'disconnect'; code: number; text: string }
  | { kind: 'skip'; reason: string };

export const verdict = {
  accept: (): Verdict => ({ kind: 'accept' }),
  reject: (code: number, text: string): Verdict => ({ kind: 'reject', code: checkCode(code, 5), text }),
  tempfail: (code: number, text: string): Verdict => ({ kind: 'tempfail', code: checkCode(code, 4), text }),
  disconnect: (code = 421, text = 'Closing connection'): Verdict => ({ kind: 'disconnect', code, text }),
  skip: (reason: string): Verdict => ({ kind: 'skip', reason }),
};

function checkCode(code: number, first: 4 | 5): number {
  if (!Number.isInteger(code) || Math.floor(code / 100) !== first) throw new RangeError(`Reply code ${code} must be ${first}xx`);
  return code;
}
