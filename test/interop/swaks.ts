// swaks as a peer: runs it non-interactively and recovers, from its transcript, the exact bytes it
// sent as message content (so the archive can be compared byte for byte).
import { run } from './harness.ts';

export interface SwaksResult {
  code: number | null;
  /** The transcript, decoded as latin1 so every byte maps to one char (8-bit content survives). */
  transcript: string;
}

/** Runs swaks with stdin closed (it would otherwise prompt for missing arguments). */
export async function swaks(args: readonly string[], timeoutMs = 30_000): Promise<SwaksResult> {
  const r = await run('swaks', ['--helo', 'interop.test', '--timeout', '20', ...args], { timeoutMs });
  return { code: r.code, transcript: r.stdout.toString('latin1') + r.stderr };
}

/** Throws with the transcript unless swaks exited 0 and the server answered 250 to the final dot. */
export function assertDelivered(res: SwaksResult): void {
  const lines = res.transcript.split(/\r?\n/);
  const dot = lines.findIndex((l) => /^ [-~]> \.$/.test(l));
  const afterDot = dot >= 0 ? lines.slice(dot + 1).find((l) => /^<[-~]{1,2} /.test(l) || /^<\*\* /.test(l)) : undefined;
  if (res.code !== 0 || !afterDot || !/^<[-~]{1,2} +250[ -]/.test(afterDot)) {
    throw new Error(`swaks did not get 250 after DATA (exit ${res.code}; reply after dot: ${JSON.stringify(afterDot)}):\n${res.transcript}`);
  }
}

/**
 * The message content swaks sent: the lines it printed as sent (" -> " in clear, " ~> " under
 * TLS) after the server's 354 and before the lone ".", dot-unstuffed, each ending in CRLF.
 */
export function sentContent(transcript: string): Buffer {
  const lines = transcript.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const start = lines.findIndex((l) => /^<[-~]{1,2} +354[ -]/.test(l));
  if (start < 0) throw new Error(`no 354 reply in the swaks transcript:\n${transcript}`);
  const body: string[] = [];
  let ended = false;
  for (const line of lines.slice(start + 1)) {
    const m = /^ [-~]> (.*)$/s.exec(line);
    if (!m) {
      if (line === ' -> ' || line === ' ~> ') { body.push(''); continue; }
      throw new Error(`unexpected transcript line inside DATA: ${JSON.stringify(line)}`);
    }
    const text = m[1] ?? '';
    if (text === '.') { ended = true; break; }
    body.push(text.startsWith('.') ? text.slice(1) : text);
  }
  if (!ended) throw new Error(`no end-of-data "." in the swaks transcript:\n${transcript}`);
  return Buffer.from(body.map((l) => `${l}\r\n`).join(''), 'latin1');
}

/** Shows two byte strings in a way that makes a difference findable. */
export function describeDiff(actual: Buffer, expected: Buffer): string {
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  const show = (b: Buffer): string => JSON.stringify(b.subarray(Math.max(0, i - 40), i + 40).toString('latin1'));
  return `lengths ${actual.length} (archived) vs ${expected.length} (sent); first difference at byte ${i}:\n  archived: ${show(actual)}\n  sent:     ${show(expected)}`;
}
