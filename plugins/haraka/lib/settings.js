'use strict'
// Turns the parsed config/postern.ini (an object from Haraka's config loader: sections of strings,
// numbers and the booleans it was told about) into checked settings for the Postern plugin. Trusts
// nothing in the file: every value is checked, and a bad one throws a SettingsError naming the
// section, key and value, so Haraka refuses to start (or keeps the previous settings on reload).

const fs = require('node:fs')
const os = require('node:os')

const MODES = ['archive_only', 'pass_through']
const TLS_MODES = ['none', 'may', 'starttls', 'implicit']

class SettingsError extends Error {
  constructor(message) {
    super(message)
    this.name = 'SettingsError'
    this.code = 'POSTERN_SETTINGS'
  }
}

/** The booleans option for Haraka's config.get('postern.ini', ...): "+" = default true. */
const INI_BOOLEANS = ['+tls.verify', '-auth.allow_insecure']

function str(ini, section, key, fallback) {
  const v = ini[section] && ini[section][key]
  if (v === undefined || v === null || v === '') return fallback
  return String(v).trim()
}

function bool(ini, section, key, fallback) {
  const v = ini[section] && ini[section][key]
  if (v === undefined || v === null || v === '') return fallback
  if (typeof v === 'boolean') return v
  if (/^(true|yes|on|1)$/i.test(String(v))) return true
  if (/^(false|no|off|0)$/i.test(String(v))) return false
  throw new SettingsError(`postern.ini [${section}] ${key}: "${v}" is not a boolean (true or false)`)
}

function int(ini, section, key, fallback, min, max) {
  const raw = str(ini, section, key, undefined)
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw new SettingsError(`postern.ini [${section}] ${key}: "${raw}" is not a whole number from ${min} to ${max}`)
  return n
}

function oneOf(ini, section, key, fallback, allowed) {
  const v = str(ini, section, key, fallback)
  if (!allowed.includes(v)) throw new SettingsError(`postern.ini [${section}] ${key}: "${v}" is not one of ${allowed.join(', ')}`)
  return v
}

/**
 * @param {Record<string, Record<string, unknown>>} ini the parsed file
 * @returns {{ host: string, port: number, mode: 'archive_only' | 'pass_through', timeoutMs: number, helo: string,
 *   tls: { mode: string, verify: boolean, ca: string | undefined, servername: string | undefined },
 *   auth: { user: string | undefined, password: string, allowInsecure: boolean } }}
 */
function parseSettings(ini) {
  const host = str(ini, 'main', 'host', '127.0.0.1')
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) throw new SettingsError(`postern.ini [main] host: "${host}" is not a host name or IP address`)
  const helo = str(ini, 'main', 'helo', os.hostname())
  if (!/^[A-Za-z0-9.:_[\]-]+$/.test(helo)) throw new SettingsError(`postern.ini [main] helo: "${helo}" is not a host name`)
  const caFile = str(ini, 'tls', 'ca', undefined)
  let ca
  if (caFile !== undefined) {
    try {
      ca = fs.readFileSync(caFile, 'utf8')
    } catch (err) {
      throw new SettingsError(`postern.ini [tls] ca: cannot read "${caFile}": ${err.message}`)
    }
  }
  const user = str(ini, 'auth', 'user', undefined)
  const password = str(ini, 'auth', 'password', '')
  if (user !== undefined && password === '') throw new SettingsError('postern.ini [auth] password: empty, but [auth] user is set')
  if (user !== undefined && /[\0\r\n]/.test(user + password)) throw new SettingsError('postern.ini [auth]: user and password must not contain NUL or line breaks')
  return {
    host,
    port: int(ini, 'main', 'port', 2525, 1, 65535),
    mode: oneOf(ini, 'main', 'mode', 'archive_only', MODES),
    timeoutMs: int(ini, 'main', 'timeout', 25, 1, 3600) * 1000,
    helo,
    tls: {
      mode: oneOf(ini, 'tls', 'mode', 'may', TLS_MODES),
      verify: bool(ini, 'tls', 'verify', true),
      ca,
      servername: str(ini, 'tls', 'servername', undefined),
    },
    auth: { user, password, allowInsecure: bool(ini, 'auth', 'allow_insecure', false) },
  }
}

module.exports = { parseSettings, SettingsError, INI_BOOLEANS, MODES, TLS_MODES }
