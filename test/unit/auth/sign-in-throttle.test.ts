// The shared sign-in throttle: burst then doubling spacing per account and per address, slots reserved
// before the check (so concurrent attempts cannot multiply the rate), refusals past maxWaitMs reported
// once per burst, successes, forgetting, the bounded table, and IPv6 /64 address keys.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignInThrottle, addressKey, type SignInSettings, type SignInTicket } from '../../../core/auth/sign-in-throttle.ts';

const settings = (over: Partial<SignInSettings> = {}): SignInSettings => ({
  burst: 2, addressBurst: 100, baseDelayMs: 100, maxDelayMs: 1000, maxWaitMs: 5000, windowSeconds: 60, maxTracked: 1000, ...over,
});

function admitted(t: SignInThrottle, account: string | null, address: string): SignInTicket {
  const a = t.admit(account, address);
  assert.equal(a.throttled, false);
  return (a as { ticket: SignInTicket }).ticket;
}

describe('sign-in throttle', () => {
  it('lets the burst through, then spaces attempts doubling per failure up to the cap', () => {
    let now = 0;
    const t = new SignInThrottle(settings(), () => now);
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const ticket = admitted(t, 'alice', '10.0.0.1');
      waits.push(ticket.waitMs);
      now += ticket.waitMs;
      ticket.failed();
    }
    assert.deepEqual(waits, [0, 0, 100, 200, 400, 800, 1000, 1000]);
    assert.equal(admitted(t, 'alice', '10.0.0.9').waitMs, 1000, 'the account is throttled from any address');
  });

  it('reserves slots before the check: attempts made at the same moment queue behind each other', () => {
    const now = 0;
    const t = new SignInThrottle(settings({ maxDelayMs: 100, maxWaitMs: 450 }), () => now);
    const results = Array.from({ length: 12 }, (_, i) => t.admit('alice', `10.0.0.${i}`));
    const waits = results.flatMap((r) => (r.throttled ? [] : [r.ticket.waitMs]));
    assert.deepEqual(waits, [0, 0, 100, 200, 300, 400], 'one slot per 100 ms after the burst, whatever the number of connections');
    const refused = results.filter((r) => r.throttled);
    assert.equal(refused.length, 6);
    assert.deepEqual(refused.map((r) => r.throttled && r.firstOfBurst), [true, false, false, false, false, false], 'reported once per burst');
    assert.ok(refused.every((r) => r.throttled && r.retryAfterMs === 500));
  });

  it('keeps the verified rate at the configured one however many connections hammer it', () => {
    // Simulated clients: each attempts, waits its slot, fails, and tries again at once; a refused one
    // waits maxWaitMs (as IMAP does) before trying again.
    const run = (connections: number): number => {
      let now = 0;
      const t = new SignInThrottle(settings({ burst: 3, baseDelayMs: 200, maxDelayMs: 200, maxWaitMs: 1000 }), () => now);
      const next: number[] = Array.from({ length: connections }, () => 0);
      let verified = 0;
      for (;;) {
        const i = next.indexOf(Math.min(...next));
        now = next[i] as number;
        if (now > 10_000) break;
        const a = t.admit('alice', `192.0.2.${i}`);
        if (a.throttled) {
          next[i] = now + 1000;
          continue;
        }
        const at = now + a.ticket.waitMs;
        if (at <= 10_000) verified++;
        now = at;
        a.ticket.failed();
        next[i] = at;
      }
      return verified;
    };
    const bound = 3 + 10_000 / 200 + 1;
    for (const n of [1, 12, 200]) assert.ok(run(n) <= bound, `${n} connections: ${run(n)} checks in 10 s (at most ${bound})`);
  });

  it('a success clears the account and gives the address back only its own attempt', () => {
    let now = 0;
    const t = new SignInThrottle(settings({ addressBurst: 3 }), () => now);
    for (let i = 0; i < 3; i++) admitted(t, 'mallory', '10.0.0.1').failed();
    const ok = admitted(t, 'alice', '10.0.0.1');
    assert.ok(ok.waitMs > 0, 'the address is throttled for every account');
    now += ok.waitMs;
    ok.succeeded();
    const again = admitted(t, 'alice', '10.0.0.2');
    assert.equal(again.waitMs, 0, 'alice starts afresh from elsewhere');
    again.succeeded();
    assert.ok(admitted(t, 'bob', '10.0.0.1').waitMs > 0, 'the address still carries the failures');
  });

  it('forgets failures after the window and answers throttled attempts with the time to the next slot', () => {
    let now = 0;
    const t = new SignInThrottle(settings({ burst: 1, maxDelayMs: 100_000, maxWaitMs: 1000 }), () => now);
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      const a = t.admit('alice', '10.0.0.1');
      if (a.throttled) {
        refused++;
        assert.ok(a.retryAfterMs > 1000);
        continue;
      }
      a.ticket.failed();
    }
    assert.ok(refused > 0);
    now += 61_000 + 100_000;
    assert.equal(admitted(t, 'alice', '10.0.0.1').waitMs, 0, 'forgotten after the window');
  });

  it('is off with baseDelayMs 0, and keeps a bounded table', () => {
    const off = new SignInThrottle(settings({ baseDelayMs: 0 }));
    for (let i = 0; i < 100; i++) assert.equal(admitted(off, 'alice', '10.0.0.1').waitMs, 0);
    const t = new SignInThrottle(settings({ maxTracked: 10 }));
    for (let i = 0; i < 100; i++) admitted(t, `user${i}`, `10.0.0.${i}`).failed();
    assert.ok(t.size <= 10);
  });

  it('counts an IPv6 client by its /64 and a mapped IPv4 address as IPv4', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    const t = new SignInThrottle(settings({ addressBurst: 1 }));
    admitted(t, 'a', '2001:db8:1:2::10').failed();
    assert.ok(admitted(t, 'b', '2001:db8:1:2::99').waitMs > 0, 'one /64 is one source');
  });
});
