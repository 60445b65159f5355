// The IMAP plugin's analyzer: ENVELOPE, BODY, BODYSTRUCTURE and the part index of each new message,
// computed in an analysis worker under the archiving budget (a message that makes the scan loop or
// allocate without end fails alone). Hands on ImapMessageData; the `index` hook stores it.
import type { AnalyzerInput } from '../../core/pipeline/analysis-types.ts';
import { computeImapData } from './message/index.ts';
import type { ImapMessageData } from './message/types.ts';

export function analyze(input: AnalyzerInput): Promise<ImapMessageData> {
  return computeImapData(input.open() as AsyncIterable<Buffer>);
}
