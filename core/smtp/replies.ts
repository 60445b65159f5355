// SMTP replies Postern gives, in one place, and the conversion of verdicts into smtp-server errors.
import type { Verdict } from '../app/verdict.ts';

export interface SmtpReply {
  code: number;
  text: string;
}

export const REPLIES = {
  tooManyRecipients: { code: 452, text: '4.5.3 Too many recipients' },
  messageTooBig: (limit: number): SmtpReply => ({ code: 552, text: `5.3.4 Message exceeds the fixed maximum message size of ${limit} bytes` }),
  smuggling: { code: 554, text: '5.5.2 Message contains a line with a lone "." not framed by CRLF (possible SMTP smuggling); rejected' },
  bareLineEnding: { code: 554, text: '5.6.0 Message contains bare CR or LF line endings; rejected by policy' },
  intakeFailed: { code: 451, text: '4.3.0 Message could not be stored durably; try again later' },
  shuttingDown: { code: 421, text: '4.3.2 Service shutting down; try again later' },
  notAllowed: { code: 530, text: '5.7.0 Authentication required' },
} as const;

/** An Error that smtp-server turns into the given reply. */
export function replyError(reply: SmtpReply): Error & { responseCode: number } {
  const err = new Error(reply.text) as Error & { responseCode: number };
  err.responseCode = reply.code;
  return err;
}

/** A gate verdict as an smtp-server callback error, or null to continue. */
export function verdictError(v: Verdict | null): (Error & { responseCode: number }) | null {
  if (!v || v.kind === 'accept' || v.kind === 'skip') return null;
  return replyError({ code: v.code, text: v.text });
}
