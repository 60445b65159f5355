// Wording helpers for the CLI's printouts: counted nouns ("1 message", "2 entries") and the
// indefinite article before a protocol or word ("an IMAP mailbox", "a POP3 mailbox").

/** "1 message", "2 messages"; irregular plurals given explicitly ("entry", "entries"). */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** "a" or "an" as the word is read: "an IMAP", "an SMTP" (letter names starting with a vowel sound), "a POP3", "a user". */
export function article(word: string): string {
  if (/^[A-Z][A-Z0-9]+$/.test(word)) return /^[AEFHILMNORSX]/.test(word) ? 'an' : 'a';
  return /^[aeio]/i.test(word) ? 'an' : 'a';
}
