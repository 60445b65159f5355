'use strict'
// A small SMTP client that hands one message to Postern's journaling endpoint with its true
// envelope: MAIL FROM, then every RCPT TO, then the body, over plain TCP, STARTTLS or implicit TLS,
// with optional AUTH PLAIN. It trusts the settings (checked by settings.js) and the body stream
// (already SMTP-ready: CRLF lines, dot-stuffed, ending in "."); it trusts nothing from the server.
// It resolves with Postern's final reply only when Postern answered 250 to the end of data (Postern
// replies 250 only after the message is durably committed); every other outcome rejects with a
// PosternDeliveryError whose `code` is stable. No dependencies beyond Node itself.

const net = require('node:net')
const tls = require('node:tls')

const MAX_LINE = 4096
const MAX_REPLY_LINES = 100

/** Stable failure codes (PosternDeliveryError#code). */
const CODES = Object.freeze({
  CONNECT: 'POSTERN_CONNECT', // the TCP/TLS connection failed or dropped
  TIMEOUT: 'POSTERN_TIMEOUT', // the whole transaction took longer than settings.timeoutMs
  TLS: 'POSTERN_TLS', // TLS required but not offered, or the handshake failed
  AUTH: 'POSTERN_AUTH', // AUTH refused, not offered, or not allowed without TLS
  REJECTED: 'POSTERN_REJECTED', // Postern answered a command with a 4xx/5xx reply
  PROTOCOL: 'POSTERN_PROTOCOL', // a reply Postern should never send (bad syntax, too long)
})

class PosternDeliveryError extends Error {
  /**
   * @param {string} code one of CODES
   * @param {string} message sentence case, with quoted values
   * @param {{ code: number, text: string } | undefined} reply Postern's reply, when there was one
   */
  constructor(code, message, reply) {
    super(message)
    this.name = 'PosternDeliveryError'
    this.code = code
    this.reply = reply
  }
}

/** Reads SMTP replies (one or more "NNN-"/"NNN " lines) from a socket, one at a time. */
class ReplyReader {
  constructor() {
    this.buffer = ''
    this.lines = []
    this.replies = []
    this.waiter = undefined
    this.failure = undefined
  }

  attach(socket) {
    this.onData = (chunk) => this.push(chunk.toString('latin1'))
    socket.on('data', this.onData)
    this.socket = socket
  }

  detach() {
    if (this.socket && this.onData) this.socket.removeListener('data', this.onData)
    this.socket = undefined
  }

  push(text) {
    this.buffer += text
    let nl
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '')
      this.buffer = this.buffer.slice(nl + 1)
      const m = /^([2-5][0-9][0-9])([ -])(.*)$/.exec(line) || /^([2-5][0-9][0-9])()$/.exec(line)
      if (!m) return this.fail(new PosternDeliveryError(CODES.PROTOCOL, `Postern sent a malformed reply line "${line.slice(0, 80)}"`))
      this.lines.push(m[3] || '')
      if (this.lines.length > MAX_REPLY_LINES) return this.fail(new PosternDeliveryError(CODES.PROTOCOL, `Postern sent a reply of more than ${MAX_REPLY_LINES} lines`))
      if (m[2] !== '-') {
        this.deliver({ code: Number(m[1]), text: this.lines.join('\n'), lines: this.lines })
        this.lines = []
      }
    }
    if (this.buffer.length > MAX_LINE) this.fail(new PosternDeliveryError(CODES.PROTOCOL, `Postern sent a reply line longer than ${MAX_LINE} bytes`))
  }

  deliver(reply) {
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.resolve(reply)
    } else {
      this.replies.push(reply)
    }
  }

  fail(err) {
    if (this.failure) return
    this.failure = err
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.reject(err)
    }
  }

  /** The next reply; rejects when the connection failed first. */
  next() {
    if (this.replies.length > 0) return Promise.resolve(this.replies.shift())
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }
}

function tlsOptions(settings, verify) {
  const opts = { rejectUnauthorized: verify, servername: settings.tls.servername || (net.isIP(settings.host) ? undefined : settings.host) }
  if (settings.tls.ca) opts.ca = settings.tls.ca
  if (!opts.servername) delete opts.servername
  return opts
}

function ehloExtensions(reply) {
  const ext = new Map()
  for (const line of reply.lines.slice(1)) {
    const [name, ...params] = line.trim().split(/\s+/)
    if (name) ext.set(name.toUpperCase(), params)
  }
  return ext
}

/** An envelope path as SMTP wants it: "<>" for the null sender, else "<address>". */
function path(address) {
  return address === '' ? '<>' : `<${address}>`
}

const NON_ASCII = /[^\x00-\x7f]/

/**
 * Sends one message to Postern.
 * @param {object} settings the validated plugin settings (settings.js)
 * @param {{ from: string, to: string[], size?: number }} envelope bare addresses ('' = null sender)
 * @param {(sink: import('node:stream').Writable) => void} pipeBody writes the SMTP-ready body
 *   (dot-stuffed, ending in ".\r\n") into `sink` and ends it
 * @returns {Promise<{ code: number, text: string }>} Postern's 250 reply to the end of data
 */
function deliver(settings, envelope, pipeBody) {
  return new Promise((resolve, reject) => {
    const reader = new ReplyReader()
    let socket
    let finished = false
    const finish = (err, value) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      if (err) {
        if (socket) socket.destroy()
        reject(err)
      } else {
        resolve(value)
      }
    }
    const timer = setTimeout(() => {
      finish(new PosternDeliveryError(CODES.TIMEOUT, `Postern at "${settings.host}:${settings.port}" did not finish the transaction within ${settings.timeoutMs} ms`))
    }, settings.timeoutMs)

    const watch = (s) => {
      s.on('error', (e) => reader.fail(new PosternDeliveryError(e.code && /CERT|SSL|TLS/.test(String(e.code)) ? CODES.TLS : CODES.CONNECT, `Connection to Postern at "${settings.host}:${settings.port}" failed: ${e.message}`)))
      s.on('close', () => reader.fail(new PosternDeliveryError(CODES.CONNECT, `Postern at "${settings.host}:${settings.port}" closed the connection`)))
    }
    const send = (line) => socket.write(`${line}\r\n`)
    const expect = async (what, ok) => {
      const reply = await reader.next()
      if (!ok.includes(reply.code)) {
        throw new PosternDeliveryError(CODES.REJECTED, `Postern refused ${what}: "${reply.code} ${reply.text.replace(/\n/g, ' ')}"`, reply)
      }
      return reply
    }
    const command = async (line, what, ok) => {
      send(line)
      return expect(what, ok)
    }

    const run = async () => {
      const implicit = settings.tls.mode === 'implicit'
      socket = implicit
        ? tls.connect({ host: settings.host, port: settings.port, ...tlsOptions(settings, settings.tls.verify) })
        : net.connect({ host: settings.host, port: settings.port })
      reader.attach(socket)
      watch(socket)
      let secure = implicit
      await expect('the connection', [220])
      let ext = ehloExtensions(await command(`EHLO ${settings.helo}`, 'EHLO', [250]))

      if (!secure && settings.tls.mode !== 'none') {
        if (ext.has('STARTTLS')) {
          await command('STARTTLS', 'STARTTLS', [220])
          reader.detach()
          const plain = socket
          plain.removeAllListeners('close')
          plain.removeAllListeners('error')
          plain.on('error', () => undefined)
          const verify = settings.tls.mode === 'starttls' && settings.tls.verify
          socket = tls.connect({ socket: plain, ...tlsOptions(settings, verify) })
          reader.attach(socket)
          watch(socket)
          await new Promise((res, rej) => {
            socket.once('secureConnect', res)
            socket.once('error', (e) => rej(new PosternDeliveryError(CODES.TLS, `TLS handshake with Postern at "${settings.host}:${settings.port}" failed: ${e.message}`)))
          })
          secure = true
          ext = ehloExtensions(await command(`EHLO ${settings.helo}`, 'EHLO', [250]))
        } else if (settings.tls.mode === 'starttls') {
          throw new PosternDeliveryError(CODES.TLS, `Postern at "${settings.host}:${settings.port}" does not offer STARTTLS and tls.mode is "starttls"`)
        }
      }

      if (settings.auth.user) {
        if (!secure && !settings.auth.allowInsecure) {
          throw new PosternDeliveryError(CODES.AUTH, 'Refusing to send the Postern password without TLS (set auth.allow_insecure to allow it)')
        }
        const mechs = (ext.get('AUTH') || []).map((m) => m.toUpperCase())
        if (!mechs.includes('PLAIN')) throw new PosternDeliveryError(CODES.AUTH, `Postern at "${settings.host}:${settings.port}" does not offer AUTH PLAIN`)
        const token = Buffer.from(`\0${settings.auth.user}\0${settings.auth.password}`, 'utf8').toString('base64')
        try {
          await command(`AUTH PLAIN ${token}`, 'AUTH PLAIN', [235])
        } catch (err) {
          if (err instanceof PosternDeliveryError && err.reply) throw new PosternDeliveryError(CODES.AUTH, err.message, err.reply)
          throw err
        }
      }

      const params = []
      if (ext.has('8BITMIME')) params.push('BODY=8BITMIME')
      if (ext.has('SIZE') && Number.isInteger(envelope.size) && envelope.size > 0) params.push(`SIZE=${envelope.size}`)
      const utf8 = NON_ASCII.test(envelope.from) || envelope.to.some((a) => NON_ASCII.test(a))
      if (utf8) {
        if (!ext.has('SMTPUTF8')) throw new PosternDeliveryError(CODES.REJECTED, 'Postern does not offer SMTPUTF8, needed for this envelope')
        params.push('SMTPUTF8')
      }
      await command(['MAIL FROM:' + path(envelope.from), ...params].join(' '), `MAIL FROM ${path(envelope.from)}`, [250])
      // Every recipient must be accepted: a recipient Postern refused would be missing from the
      // archive's attribution, so the whole transaction fails (and the sender retries).
      for (const rcpt of envelope.to) await command(`RCPT TO:${path(rcpt)}`, `RCPT TO ${path(rcpt)}`, [250, 251])
      await command('DATA', 'DATA', [354])

      const dataSocket = socket
      await new Promise((res, rej) => {
        const { PassThrough } = require('node:stream')
        const sink = new PassThrough()
        sink.on('data', (chunk) => {
          if (!dataSocket.write(chunk)) {
            sink.pause()
            dataSocket.once('drain', () => sink.resume())
          }
        })
        sink.once('end', res)
        sink.once('error', rej)
        try {
          pipeBody(sink)
        } catch (err) {
          rej(err)
        }
      })
      const final = await expect('the message', [250])
      send('QUIT')
      socket.end()
      return { code: final.code, text: final.text }
    }

    run().then((value) => finish(undefined, value), (err) => finish(err instanceof PosternDeliveryError ? err : new PosternDeliveryError(CODES.CONNECT, `Handing the message to Postern failed: ${err && err.message}`)))
  })
}

module.exports = { deliver, PosternDeliveryError, CODES }
