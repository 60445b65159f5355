// Deliberately broken targets for the watchdog's self-test (watchdog.test.ts): each misbehaves only on an
// input holding ")" (as the IMAP address-list tokenizer once did on "Cc: )"), so the harness must find
// such an input by mutation and report it.
import type { FuzzGroup } from './target.ts';

const seeds = (): Buffer[] => [Buffer.from('Cc: a@b'), Buffer.from('(x)')];
const trigger = (input: Buffer): boolean => input.includes(0x29);

export const group: FuzzGroup = {
  group: 'selftest',
  targets: [
    {
      name: 'selftest.endless-loop',
      seeds,
      run(input) {
        let spins = 0;
        // eslint-disable-next-line no-constant-condition
        while (trigger(input)) spins++;
        if (spins < 0) throw new Error('unreachable');
      },
    },
    {
      name: 'selftest.heap-growth',
      seeds,
      run(input) {
        const tokens: Array<{ kind: string; text: string }> = [];
        while (trigger(input)) tokens.push({ kind: 'atom', text: '' });
      },
    },
    {
      name: 'selftest.buffer-growth',
      seeds,
      run(input) {
        const chunks: Buffer[] = [];
        while (trigger(input)) chunks.push(Buffer.alloc(16 * 1024 * 1024, 1));
      },
    },
    {
      name: 'selftest.pending-forever',
      seeds,
      async run(input) {
        if (trigger(input)) await new Promise<void>(() => undefined);
      },
    },
    {
      name: 'selftest.throws',
      seeds,
      run(input) {
        if (trigger(input)) throw new Error('a property broke');
      },
    },
    {
      name: 'selftest.healthy',
      seeds,
      run(input) {
        if (input.length < 0) throw new Error('unreachable');
      },
    },
  ],
};
