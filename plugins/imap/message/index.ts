// The imap plugin's message model: ENVELOPE/BODY/BODYSTRUCTURE computed once at archive time, section
// extraction for BODY[...]<partial>, and SEARCH text/header matching, all on the message's CRLF view
// (bare LF read as CRLF, crlf.ts). Re-exports only; see each module.
export type { ImapMessageData, SectionSpec, PartIndex } from './types.ts';
export { imapDataOf } from './types.ts';
export { computeImapData } from './compute.ts';
export { parseSection, sectionOf } from './section.ts';
export { textMatches, collectText, collectedMatches, headerMatches, headerModeOf, headerSearchValues, headerValuesMatch, joinedValuesMatch, type HeaderMode } from './search.ts';
export { crlfView, viewWindow } from './crlf.ts';
