// Secrets in job definitions (IMAP/POP3 passwords) are sealed with AES-256-GCM under a key file in
// the data directory (created 0600 on first use), so the job store never holds them in clear text.
// Trusts the key file's owner; hands decrypted values only to a job run, never to logs or the API.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternError } from '../errors.ts';

const PREFIX = 'enc:v1:';
export const REDACTED = '(secret)';

export class SecretBox {
  private key: Buffer | null = null;

  constructor(private readonly keyFile: string) {}

  static inDataDir(dataDir: string): SecretBox {
    return new SecretBox(join(dataDir, 'jobs-secret.key'));
  }

  private getKey(): Buffer {
    if (this.key) return this.key;
    if (!existsSync(this.keyFile)) {
      writeFileSync(this.keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    }
    const text = readFileSync(this.keyFile, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/i.test(text)) throw new PosternError('CONFIG_INVALID', `Job secret key file "${this.keyFile}" must hold 64 hex characters`);
    this.key = Buffer.from(text, 'hex');
    return this.key;
  }

  static isSealed(value: unknown): value is string {
    return typeof value === 'string' && value.startsWith(PREFIX);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.getKey(), iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  open(sealed: string): string {
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    if (raw.length < 28) throw new PosternError('INVALID_INPUT', 'A sealed job secret is truncated');
    const d = createDecipheriv('aes-256-gcm', this.getKey(), raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch {
      throw new PosternError('INVALID_INPUT', `A job secret cannot be decrypted with "${this.keyFile}" (was the key file replaced?)`);
    }
  }

  /** Options with every named secret sealed (already sealed values are kept). */
  sealOptions(options: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
    const out = { ...options };
    for (const n of names) {
      const v = out[n];
      if (typeof v === 'string' && v !== '' && !SecretBox.isSealed(v)) out[n] = this.seal(v);
    }
    return out;
  }

  openOptions(options: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
    const out = { ...options };
    for (const n of names) {
      const v = out[n];
      if (SecretBox.isSealed(v)) out[n] = this.open(v);
    }
    return out;
  }
}

export function redactOptions(options: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out = { ...options };
  for (const n of names) if (typeof out[n] === 'string' && out[n] !== '') out[n] = REDACTED;
  return out;
}
