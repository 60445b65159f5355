import type { FuzzGroup } from './target.ts';
export const group: FuzzGroup = { group: 'imap-message', targets: [] };
