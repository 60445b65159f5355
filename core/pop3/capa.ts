// CAPA reconciliation (RFC 2449): what the client is told the proxy can do. Only capabilities whose
// commands the proxy relays survive from the upstream's list; STLS is Postern's own (client leg);
// PIPELINING is dropped (commands are relayed one at a time); SASL is narrowed to PLAIN (the only
// mechanism passed through and understood for attribution). Credentials are offered only where
// the plaintext policy allows them. Trusts the upstream's lines only as words to filter.

export interface CapaPolicy {
  /** Offer STLS (client leg not yet encrypted and TLS material present). */
  stls: boolean;
  /** USER/PASS and AUTH PLAIN allowed on this connection now. */
  plaintextAuth: boolean;
}

/** Upstream capabilities passed through unchanged (their commands, if any, are relayed). */
const PASSED = new Set(['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'EXPIRE', 'LOGIN-DELAY']);

/**
 * The capability lines for the client. `upstream` is the upstream's CAPA list (without the status
 * line and terminator), or null when the upstream does not support CAPA.
 */
export function reconcileCapa(upstream: readonly string[] | null, policy: CapaPolicy): string[] {
  const out: string[] = [];
  let user = upstream === null;
  let plain = false;
  for (const raw of upstream ?? []) {
    const line = raw.trim();
    const [word = '', ...args] = line.split(/\s+/);
    const name = word.toUpperCase();
    if (name === 'USER') user = true;
    else if (name === 'SASL') plain = args.some((a) => a.toUpperCase() === 'PLAIN');
    else if (PASSED.has(name) && /^[\x20-\x7e]*$/.test(line)) out.push(line);
  }
  if (policy.stls) out.push('STLS');
  if (policy.plaintextAuth) {
    if (user) out.push('USER');
    if (plain) out.push('SASL PLAIN');
  }
  out.push('IMPLEMENTATION Postern');
  return out;
}
