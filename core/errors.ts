// Typed failures with stable codes, defined in one place. Protocol outcomes are values (verdicts,
// replies); these are for things that went wrong. Messages are sentence case with quoted values.

export const ERROR_CODES = {
  CONFIG_INVALID: 'Configuration is invalid',
  PLUGIN_MISSING: 'Plugin is missing',
  PLUGIN_DEPENDENCY: 'Plugin dependency is missing',
  PLUGIN_CONFLICT: 'Two plugins provide the same service',
  SERVICE_MISSING: 'Service is not registered',
  HOOK_TIMEOUT: 'Hook timed out',
  STORAGE_CLOSED: 'Storage is closed',
  STORAGE_IO: 'Storage input/output failed',
  NOT_FOUND: 'Not found',
  CONFLICT: 'Already exists',
  INVALID_INPUT: 'Input is invalid',
  TOO_LARGE: 'Message is larger than allowed',
  INTAKE_CORRUPT: 'Intake entry is corrupt',
  UNAUTHORIZED: 'Unauthorized',
  SHUTTING_DOWN: 'Server is shutting down',
  UNAVAILABLE: 'Service is not available yet',
  FORBIDDEN: 'Not permitted',
  HELD: 'Protected by retention or legal hold',
  UPSTREAM_FAILED: 'Upstream server failed',
  POP3_UPSTREAM: 'Upstream POP3 server failed',
  STORAGE_RECOVERING: 'Storage is recovering from a failed write',
  MESSAGE_BUDGET: 'Message exceeded its processing budget',
  BACKUP_CORRUPT: 'Backup is damaged',
  DIRECTORY_FAILED: 'Directory (LDAP) server failed',
  OAUTH2_FAILED: 'OAuth2 token endpoint failed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PosternError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PosternError';
    this.code = code;
  }
}

export function isPosternError(err: unknown, code?: ErrorCode): err is PosternError {
  return err instanceof PosternError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
