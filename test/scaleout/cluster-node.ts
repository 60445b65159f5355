// A `postern serve` node of a postgres-s3 cluster for the scale-out tier: its configuration file (its
// own data directory, the shared database and bucket, IMAP on a free port) and the test user every
// cluster test reads as. Used by nodes.test.ts and faults.test.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.ts';
import type { S3Coordinates } from './engines.ts';

export interface ClusterPlace {
  /** Directory holding every node's data directory and configuration. */
  work: string;
  dbUrl: string;
  bucket: string;
  s3: S3Coordinates;
}

/** Writes <work>/<name>.yaml; `extra` lines are added at the top level (jobs, intake settings …). */
export function nodeConfig(place: ClusterPlace, name: string, options: { s3Extra?: string; extra?: string[] } = {}): string {
  const secretFile = join(place.work, 's3-secret');
  writeFileSync(secretFile, place.s3.secretAccessKey + '\n', { mode: 0o600 });
  const file = join(place.work, `${name}.yaml`);
  writeFileSync(file, [
    `dataDir: ${JSON.stringify(join(place.work, name))}`,
    'storage:',
    '  backend: postgres-s3',
    `  node: ${name}`,
    `  postgres: { url: ${JSON.stringify(place.dbUrl)}, poolSize: 4 }`,
    `  s3: { endpoint: ${JSON.stringify(place.s3.endpoint)}, region: ${place.s3.region}, bucket: ${place.bucket}, accessKeyId: ${JSON.stringify(place.s3.accessKeyId)}, secretAccessKeyFile: ${JSON.stringify(secretFile)}${options.s3Extra ? `, ${options.s3Extra}` : ''} }`,
    'signIn: { baseDelayMs: 0 }',
    ...(options.extra ?? []),
    'plugins:',
    '  - name: imap',
    '    config: { port: 0, tlsPort: null, allowPlaintext: true }',
    '',
  ].join('\n'));
  return file;
}

export function startNode(place: ClusterPlace, name: string, options: Parameters<typeof nodeConfig>[2] = {}): Promise<SpawnedServer> {
  return spawnServer(join(place.work, name), { POSTERN_CONFIG: nodeConfig(place, name, options) });
}

/** alice@example.com with a password, the login privilege and IMAP access (through one node's API). */
export async function addAlice(node: SpawnedServer, password: string): Promise<void> {
  await node.api('POST', '/api/v1/users', { name: 'alice', addresses: ['alice@example.com'] });
  await node.api('PATCH', '/api/v1/privileges/alice', { add: ['login'] });
  await node.api('PUT', '/api/v1/account/password', { user: 'alice', password });
  await node.api('PUT', '/api/v1/users/alice/imap', { enabled: true });
}
