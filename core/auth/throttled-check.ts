// One password sign-in through the shared throttle, for protocols whose sign-in is a plain yes/no
// (SMTP AUTH on the receiver and the relay proxy): reserve the slot, wait for it, check, report the
// outcome. A throttled attempt is refused without a check. Trusts `check`; hands on the outcome.
import { pause, type SignInThrottle } from './sign-in-throttle.ts';

export type SignInOutcome = { kind: 'ok' } | { kind: 'failed' } | { kind: 'throttled'; retryAfterMs: number };

export async function throttledCheck(throttle: SignInThrottle | undefined, account: string, address: string, check: () => Promise<boolean>): Promise<SignInOutcome> {
  const admission = throttle?.admit(account.toLowerCase().slice(0, 320), address);
  if (admission?.throttled) return { kind: 'throttled', retryAfterMs: admission.retryAfterMs };
  const ticket = admission?.ticket;
  if (ticket) await pause(ticket.waitMs);
  let ok = false;
  try {
    ok = await check();
  } finally {
    if (ok) ticket?.succeeded();
    else ticket?.failed();
  }
  return ok ? { kind: 'ok' } : { kind: 'failed' };
}
