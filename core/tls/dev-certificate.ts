// TLS material for listeners: the configured certificate and key, or (when none is configured) a
// self-signed pair generated once into the data directory for development and private links.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { PosternError } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  selfSigned: boolean;
}

export async function loadTls(configured: { cert: string; key: string }, dataDir: string, hostname: string, log: Logger): Promise<TlsMaterial> {
  if (configured.cert !== '' || configured.key !== '') {
    if (configured.cert === '' || configured.key === '') throw new PosternError('CONFIG_INVALID', 'TLS needs both "cert" and "key", or neither');
    try {
      return { cert: readFileSync(configured.cert), key: readFileSync(configured.key), selfSigned: false };
    } catch (err) {
      throw new PosternError('CONFIG_INVALID', `TLS certificate or key cannot be read: ${(err as Error).message}`);
    }
  }
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, 'self-signed.crt');
  const keyPath = join(dir, 'self-signed.key');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pems = await generate([{ name: 'commonName', value: hostname }], {
      days: 3650, keySize: 2048,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    } as Parameters<typeof generate>[1]);
    writeFileSync(keyPath, pems.private, { mode: 0o600 });
    writeFileSync(certPath, pems.cert, { mode: 0o644 });
    log.warn('No TLS certificate configured; generated a self-signed one for development', { cert: certPath });
  }
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), selfSigned: true };
}
