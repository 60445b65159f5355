// Message bytes of the scale-out backend as objects in an S3-compatible store with Object Lock (WORM).
// A blob's encoded chunks (blob-codec.ts: compressed/encrypted exactly as in the embedded archive) are
// objects named by the blob's SHA-256: `blobs/<sha256>` for the first chunk, which is the whole blob
// for every message up to 1 MiB, and `blobs/<sha256>.<n>` for further chunks of larger ones. The
// bucket must have Object Lock on (it is created so when missing): each version then carries a
// COMPLIANCE retain-until that only ever moves later and a legal-hold flag, and the store itself
// refuses to delete a version under either, whoever holds the credentials.
// Trusts: the archive for when to retain and hold. Hands out Buffers; no SDK types escape this file.
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, GetObjectLegalHoldCommand, GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand, HeadBucketCommand, ListObjectVersionsCommand, PutObjectCommand, PutObjectLegalHoldCommand,
  PutObjectRetentionCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { PosternError, errorMessage } from '../errors.ts';

export interface S3BlobStoreOptions {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style addressing (http://host/bucket/key): what RGW and MinIO on one host need. */
  forcePathStyle: boolean;
  /** Create the bucket (with Object Lock) when it does not exist. */
  createBucket: boolean;
  /** Seconds one request may take before it fails (the archive retries the whole step later). */
  timeoutSeconds?: number;
}

/** What a blob's objects are protected by right now. */
export interface ObjectProtection {
  retainUntil: string | null;
  legalHold: boolean;
}

/** One stored version (or delete marker) of a blob chunk's object. */
export interface BlobVersion {
  key: string;
  sha256: string;
  n: number;
  versionId: string;
  /** Epoch milliseconds. */
  lastModified: number;
}

const PREFIX = 'blobs/';

/** The object holding chunk n of a blob. */
export function objectKey(sha256: string, n: number): string {
  return n === 0 ? `${PREFIX}${sha256}` : `${PREFIX}${sha256}.${n.toString(16).padStart(6, '0')}`;
}

/** The blob and chunk an object name stands for, or null for anything else in the bucket. */
export function parseObjectKey(key: string): { sha256: string; n: number } | null {
  const m = /^blobs\/([0-9a-f]{64})(?:\.([0-9a-f]{6}))?$/.exec(key);
  return m ? { sha256: m[1] as string, n: m[2] ? parseInt(m[2], 16) : 0 } : null;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

function nameOf(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

function s3Error(err: unknown, what: string): PosternError {
  if (err instanceof PosternError) return err;
  return new PosternError('STORAGE_IO', `S3 ${what} failed: ${nameOf(err) || 'error'}: ${errorMessage(err)}`, { cause: err });
}

export class S3BlobStore {
  private readonly client: S3Client;
  readonly bucket: string;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      // The archive retries a failed step itself, from the durable intake.
      maxAttempts: 2,
      requestHandler: { requestTimeout: (options.timeoutSeconds ?? 30) * 1000, connectionTimeout: 5000 },
      // RGW 16 does not know the newer default integrity checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** Checks (or creates) the bucket: it must exist with Object Lock enabled, or nothing is stored. */
  async open(): Promise<void> {
    let exists = true;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (statusOf(err) !== 404) throw s3Error(err, `checking bucket "${this.bucket}"`);
      exists = false;
    }
    if (!exists) {
      if (!this.options.createBucket) throw new PosternError('CONFIG_INVALID', `S3 bucket "${this.bucket}" does not exist (create it with Object Lock, or set storage.s3.createBucket)`);
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: this.bucket, ObjectLockEnabledForBucket: true }));
      } catch (err) {
        if (nameOf(err) !== 'BucketAlreadyOwnedByYou') throw s3Error(err, `creating bucket "${this.bucket}"`);
      }
    }
    let enabled = false;
    try {
      const lock = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      enabled = lock.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      if (statusOf(err) !== 404) throw s3Error(err, `reading the Object Lock configuration of "${this.bucket}"`);
    }
    if (!enabled) throw new PosternError('CONFIG_INVALID', `S3 bucket "${this.bucket}" does not have Object Lock enabled; an archive bucket must be created with it`);
  }

  close(): void {
    this.client.destroy();
  }

  async put(sha256: string, n: number, body: Buffer, protection?: ObjectProtection): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: objectKey(sha256, n), Body: body, ContentLength: body.length,
        ...(protection?.retainUntil ? { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(protection.retainUntil) } : {}),
        ...(protection?.legalHold ? { ObjectLockLegalHoldStatus: 'ON' } : {}),
      }));
    } catch (err) {
      throw s3Error(err, `PUT of blob ${sha256.slice(0, 12)} chunk ${n}`);
    }
  }

  async get(sha256: string, n: number): Promise<Buffer | null> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey(sha256, n) }));
      if (!out.Body) return null;
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (err) {
      if (statusOf(err) === 404 || nameOf(err) === 'NoSuchKey') return null;
      throw s3Error(err, `GET of blob ${sha256.slice(0, 12)} chunk ${n}`);
    }
  }

  /** Every version of the object (a versioned bucket keeps old ones; deletion must remove each). */
  private async versions(key: string): Promise<string[]> {
    const out: string[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) if (v.Key === key && v.VersionId) out.push(v.VersionId);
      if (!page.IsTruncated) return out;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
  }

  /**
   * Every version and delete marker under `blobs/` (pages of up to 1000), each with its chunk and when
   * it was written: what the orphan sweep walks.
   */
  async *listBlobVersions(): AsyncIterable<BlobVersion> {
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: PREFIX, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      } catch (err) {
        throw s3Error(err, `listing the objects of "${this.bucket}"`);
      }
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        const chunk = v.Key ? parseObjectKey(v.Key) : null;
        if (chunk && v.Key && v.VersionId) yield { key: v.Key, ...chunk, versionId: v.VersionId, lastModified: v.LastModified?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
  }

  /** Removes one version of an object for good; HELD when Object Lock refuses it. */
  async deleteVersion(key: string, versionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, VersionId: versionId }));
    } catch (err) {
      if (statusOf(err) === 403) throw new PosternError('HELD', `The S3 store refuses to delete ${key} version ${versionId}: it is under Object Lock retention or legal hold`, { cause: err });
      throw s3Error(err, `DELETE of ${key} version ${versionId}`);
    }
  }

  /**
   * Removes every version of the chunk's object. A version under retention or legal hold is refused by
   * the store: HELD. An object that is not there is not an error.
   */
  async delete(sha256: string, n: number): Promise<void> {
    const key = objectKey(sha256, n);
    try {
      for (const versionId of await this.versions(key)) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, VersionId: versionId }));
      }
    } catch (err) {
      if (statusOf(err) === 403) throw new PosternError('HELD', `The S3 store refuses to delete ${key}: it is under Object Lock retention or legal hold`, { cause: err });
      throw s3Error(err, `DELETE of ${key}`);
    }
  }

  /** The protection of the chunk's current version (null when the object does not exist). */
  async protection(sha256: string, n: number): Promise<ObjectProtection | null> {
    const Key = objectKey(sha256, n);
    try {
      const [r, h] = await Promise.all([
        this.client.send(new GetObjectRetentionCommand({ Bucket: this.bucket, Key })).catch((err: unknown) => {
          if (statusOf(err) === 404 && nameOf(err) !== 'NoSuchKey') return null; // no retention configuration
          throw err;
        }),
        this.client.send(new GetObjectLegalHoldCommand({ Bucket: this.bucket, Key })).catch((err: unknown) => {
          if (statusOf(err) === 404 && nameOf(err) !== 'NoSuchKey') return null;
          throw err;
        }),
      ]);
      return { retainUntil: r?.Retention?.RetainUntilDate?.toISOString() ?? null, legalHold: h?.LegalHold?.Status === 'ON' };
    } catch (err) {
      if (nameOf(err) === 'NoSuchKey') return null;
      throw s3Error(err, `reading the protection of ${Key}`);
    }
  }

  /** Moves the COMPLIANCE retain-until of the chunk's current version later (never earlier). */
  async retain(sha256: string, n: number, until: string): Promise<void> {
    const Key = objectKey(sha256, n);
    const current = await this.protection(sha256, n);
    if (current === null) throw new PosternError('STORAGE_IO', `Object ${Key} is missing; cannot retain it`);
    if (current.retainUntil !== null && current.retainUntil >= new Date(until).toISOString()) return;
    try {
      await this.client.send(new PutObjectRetentionCommand({ Bucket: this.bucket, Key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(until) } }));
    } catch (err) {
      throw s3Error(err, `setting retention of ${Key}`);
    }
  }

  async legalHold(sha256: string, n: number, on: boolean): Promise<void> {
    const Key = objectKey(sha256, n);
    try {
      await this.client.send(new PutObjectLegalHoldCommand({ Bucket: this.bucket, Key, LegalHold: { Status: on ? 'ON' : 'OFF' } }));
    } catch (err) {
      throw s3Error(err, `setting the legal hold of ${Key}`);
    }
  }
}
