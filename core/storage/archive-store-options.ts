// The options the archive (KvArchiveStore) is built with from the configuration: blob codec and cipher,
// configured retention policies, hold-everything and the router's address rules. One place, so the server
// and the offline tools that open an archive (postern migrate) apply the same holds and ciphers.
import { readFileSync } from 'node:fs';
import { PosternError } from '../errors.ts';
import type { Config } from '../config/schema.ts';
import { configuredPolicies } from '../compliance/setup.ts';
import { aes256gcmCipher, type BlobCodecOptions, type ChunkCipher } from './blob-codec.ts';
import type { RetentionOptions } from './kv-retention.ts';

/** The cipher of storage.encryptionKeyFile (none when empty). */
export function cipherFrom(file: string): { cipher?: ChunkCipher } {
  if (file === '') return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new PosternError('CONFIG_INVALID', `Encryption key file "${file}" cannot be read: ${(err as Error).message}`);
  }
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new PosternError('CONFIG_INVALID', `Encryption key file "${file}" must hold 64 hex characters (a 256-bit key)`);
  return { cipher: aes256gcmCipher(Buffer.from(text, 'hex')) };
}

export function archiveStoreOptions(config: Config, backend: string): { backend: string; codec: BlobCodecOptions; cipher?: ChunkCipher; retention: RetentionOptions } {
  return {
    backend,
    codec: config.storage.compression, ...cipherFrom(config.storage.encryptionKeyFile),
    retention: {
      policies: configuredPolicies(config.compliance), holdEverything: config.compliance.holdEverything, sentFolder: config.routing.sentFolder,
      // Holds and policies compare addresses as the router files them (sub-addresses, local-part case).
      addressRules: { localPartCase: config.routing.localPartCase, subaddressSeparator: config.routing.subaddressSeparator },
    },
  };
}
