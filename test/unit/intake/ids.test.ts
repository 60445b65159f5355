// Intake ids keep their shape (time, counter, process tag, one random byte: 21 lowercase base-36/hex
// chars), sort by time, and stay unique across many ids (the random byte comes from a refilled pool).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIntakeId } from '../../../core/intake/ids.ts';

test('ids have the documented shape, sort by time and are unique over several pool refills', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => newIntakeId(1_700_000_000_000 + i));
  for (const id of ids) assert.match(id, /^[0-9a-z]{9}[0-9a-z]{4}[0-9a-f]{4}[0-9a-f]{2}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  const randomParts = new Set(ids.map((id) => id.slice(-2)));
  assert.ok(randomParts.size > 100, `the random byte varies (${randomParts.size} distinct values in 2000 ids)`);
});
