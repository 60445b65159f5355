import type { FuzzGroup } from './target.ts';
export const group: FuzzGroup = { group: 'pop3', targets: [] };
