// API validation errors read as sentences: field names quoted, list items counted from 1, missing and
// unknown fields said plainly, a schema's own wording kept, no zod paths ("body: …", "addGroups.0: …").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { HttpError, validated } from '../../../core/admin/http.ts';

const user = z.strictObject({
  name: z.string().regex(/^[a-z]+$/, 'must be lower-case letters'),
  addresses: z.array(z.string().min(1).max(320)).max(2),
  groups: z.array(z.string().regex(/^[a-z]+$/, 'must be lower-case letters')).optional(),
  limit: z.number().int().min(1).max(10).optional(),
  password: z.string().min(8, 'must be at least 8 characters').optional(),
  code: z.string().regex(/^\d+$/).optional(),
  state: z.enum(['on', 'off']).optional(),
  on: z.boolean().optional(),
}).refine((u) => u.addresses.length > 0, 'a user needs at least one address or domain');

function message(body: unknown): string {
  try {
    validated(user, body);
  } catch (err) {
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, 400);
    return err.message;
  }
  assert.fail('expected a validation error');
}

test('validation errors are sentences without zod paths', () => {
  assert.equal(message({ name: 'alice', addresses: [] }), 'A user needs at least one address or domain');
  assert.equal(message({}), '"name" is missing; "addresses" is missing');
  assert.equal(message(5), 'The request body must be an object, not a number');
  assert.equal(message({ name: 'alice', addresses: ['a'], groups: ['ok', 'Not Valid'] }), '"groups" item 2 must be lower-case letters');
  assert.equal(message({ name: 'alice', addresses: ['a', 'b', 'c'] }), '"addresses" must list at most 2 values');
  assert.equal(message({ name: 'alice', addresses: [''] }), '"addresses" item 1 must not be empty');
  assert.equal(message({ name: 'alice', addresses: ['a'], limit: 11 }), '"limit" must be at most 10');
  assert.equal(message({ name: 'alice', addresses: ['a'], limit: 1.5 }), '"limit" must be a whole number');
  assert.equal(message({ name: 'alice', addresses: ['a'], state: 'maybe' }), '"state" must be one of "on", "off"');
  assert.equal(message({ name: 'alice', addresses: ['a'], on: 'yes' }), '"on" must be true or false, not text');
  assert.equal(message({ name: 'alice', addresses: ['a'], extra: 1, more: 2 }), 'Unknown fields "extra", "more"');
  assert.equal(message({ name: 'alice', addresses: ['a'], password: 'short' }), '"password" must be at least 8 characters');
  assert.equal(message({ name: 'alice', addresses: ['a'], code: 'x' }), '"code" is not in the expected format');
  for (const m of [message({}), message({ name: 'A', addresses: [] })]) assert.doesNotMatch(m, /\bbody:|Invalid input|\w\.\d+:/);
});
