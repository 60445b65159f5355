// Key layout of the embedded archive (documented in core/storage/KEYS.md). Components are joined with
// NUL, which user names, folder names, ids and addresses can never contain, so prefixes never collide.

const SEP = '\u0000';

export const keys = {
  user: (name: string) => `u${SEP}${name}`,
  userPrefix: () => `u${SEP}`,
  address: (address: string) => `a${SEP}${address}`,
  domain: (domain: string) => `o${SEP}${domain}`,
  pop3: (login: string) => `p${SEP}${login}`,
  folder: (user: string, folder: string) => `f${SEP}${user}${SEP}${folder}`,
  folderPrefix: (user: string) => `f${SEP}${user}${SEP}`,
  entry: (user: string, folder: string, uid: number) => `e${SEP}${user}${SEP}${folder}${SEP}${uidKey(uid)}`,
  entryPrefix: (user: string, folder: string) => `e${SEP}${user}${SEP}${folder}${SEP}`,
  holds: (user: string, folder: string, messageId: string) => `h${SEP}${user}${SEP}${folder}${SEP}${messageId}`,
  message: (id: string) => `m${SEP}${id}`,
  blob: (sha256: string) => `b${SEP}${sha256}`,
  chunk: (sha256: string, n: number) => `c${SEP}${sha256}${SEP}${n.toString(16).padStart(6, '0')}`,
  chunkPrefix: (sha256: string) => `c${SEP}${sha256}${SEP}`,
  capture: (id: string) => `x${SEP}${id}`,
  identity: (identity: string) => `i${SEP}${identity}`,
  flagged: (messageId: string) => `fl${SEP}${messageId}`,
  flaggedPrefix: () => `fl${SEP}`,
  stats: () => `s${SEP}stats`,
  // retention and legal hold (core/storage/kv-retention.ts)
  retention: (user: string, folder: string, uid: number) => `rt${SEP}${user}${SEP}${folder}${SEP}${uidKey(uid)}`,
  purgeIndex: (purgeAfter: string, user: string, folder: string, uid: number) => `rp${SEP}${purgeAfter}${SEP}${user}${SEP}${folder}${SEP}${uidKey(uid)}`,
  purgeIndexPrefix: () => `rp${SEP}`,
  messageEntry: (messageId: string, user: string, folder: string) => `me${SEP}${messageId}${SEP}${user}${SEP}${folder}`,
  messageEntryPrefix: (messageId: string) => `me${SEP}${messageId}${SEP}`,
  messageIdentity: (messageId: string, identity: string) => `im${SEP}${messageId}${SEP}${identity}`,
  messageIdentityPrefix: (messageId: string) => `im${SEP}${messageId}${SEP}`,
  legalHold: (name: string) => `lh${SEP}${name}`,
  legalHoldPrefix: () => `lh${SEP}`,
  holdEverything: () => `s${SEP}hold-everything`,
  policy: (name: string) => `pl${SEP}${name}`,
  policyPrefix: () => `pl${SEP}`,
  audit: (seq: number) => `au${SEP}${seq.toString(16).padStart(12, '0')}`,
  auditPrefix: () => `au${SEP}`,
  auditHead: () => `ah${SEP}head`,
  entryAll: () => `e${SEP}`,
  messagePrefix: () => `m${SEP}`,
  blobPrefix: () => `b${SEP}`,
  job: (name: string) => `jd${SEP}${name}`,
  jobPrefix: () => `jd${SEP}`,
  jobState: (name: string) => `jt${SEP}${name}`,
  jobResult: (startedAt: string, id: string) => `jr${SEP}${startedAt}${SEP}${id}`,
  jobResultPrefix: () => `jr${SEP}`,
};

/** UIDs are 32-bit; fixed-width hex keeps byte order equal to numeric order. */
export function uidKey(uid: number): string {
  return uid.toString(16).padStart(8, '0');
}

/**
 * The first key after every key starting with prefix, in the engine's byte (UTF-8) order. Prefixes end
 * with the NUL separator, so bumping it to U+0001 bounds them exactly; appending U+FFFF would not, as
 * characters outside the BMP (a folder named "😀 …") encode to bytes above it.
 */
export function prefixEnd(prefix: string): string {
  return prefix.endsWith(SEP) ? prefix.slice(0, -1) + '\u0001' : prefix + '\uffff';
}

export function splitKey(key: string): string[] {
  return key.split(SEP);
}
