// The terminal form of a log record: "HH:MM:SS.mmm LEVEL message key=value …", one line, from the JSON
// line pino produced (already redacted). Used only when the output is a terminal (or log.format is
// pretty); everything else gets the JSON line itself.

const HIDDEN = new Set(['time', 'level', 'msg']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

export function prettyLine(jsonLine: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : '';
  const level = String(rec.level ?? '').toUpperCase().padEnd(5);
  const kv = Object.entries(rec).filter(([k]) => !HIDDEN.has(k)).map(([k, v]) => `${k}=${value(v)}`).join(' ');
  return `${time} ${level} ${String(rec.msg ?? '')}${kv ? ' ' + kv : ''}\n`;
}
