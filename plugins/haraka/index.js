'use strict'
// haraka-plugin-postern: on Haraka's queue hooks (queue for received mail, queue_outbound for
// relayed mail) it hands each message to Postern's SMTP journaling endpoint with its true envelope
// (MAIL FROM and every RCPT TO, so Bcc recipients are attributed), and answers Haraka only after
// Postern acknowledged: Postern replies 250 only once the message is durably committed.
//   mode=archive_only  OK after Postern's 250: Haraka answers 250 and delivers nothing itself.
//   mode=pass_through  CONT after Postern's 250: the next queue plugin (or, for queue_outbound,
//                      Haraka's outbound delivery) carries the message on.
// Any failure (Postern down, refused, slow, TLS or AUTH trouble) is DENYSOFT: the client gets a
// 4xx and retries; nothing is acknowledged that Postern does not hold. Trusts Haraka's transaction;
// settings come from config/postern.ini (lib/settings.js checks them).

const { parseSettings, INI_BOOLEANS } = require('./lib/settings')
const { deliver } = require('./lib/smtp-client')

exports.register = function () {
  this.load_postern_ini()
  this.register_hook('queue', 'journal_to_postern')
  this.register_hook('queue_outbound', 'journal_to_postern')
}

exports.load_postern_ini = function () {
  const ini = this.config.get('postern.ini', { booleans: INI_BOOLEANS }, () => {
    try {
      this.load_postern_ini()
    } catch (err) {
      this.logerror(`postern.ini not reloaded, keeping the previous settings: ${err.message}`)
    }
  })
  // A bad file throws here: at startup Haraka refuses to load the plugin with this message.
  this.settings = parseSettings(ini)
  this.loginfo(`archiving to Postern at ${this.settings.host}:${this.settings.port} (mode ${this.settings.mode}, tls ${this.settings.tls.mode})`)
}

/** The bare address of a Haraka envelope address ('' for the null sender <>). */
function bare(addr) {
  if (!addr || (typeof addr.isNull === 'function' && addr.isNull())) return ''
  return typeof addr.address === 'function' ? addr.address() : String(addr.address)
}

exports.journal_to_postern = function (next, connection) {
  const txn = connection.transaction
  if (!txn) return next()
  const settings = this.settings
  const envelope = { from: bare(txn.mail_from), to: txn.rcpt_to.map(bare), size: txn.data_bytes }
  // Haraka runs queue_outbound instead of queue for relaying (authenticated or allowed) clients.
  const hook = connection.relaying ? 'queue_outbound' : 'queue'
  const started = Date.now()
  deliver(settings, envelope, (sink) => {
    // Stored lines go out as they arrived: CRLF, dot-stuffing kept, "." appended.
    txn.message_stream.pipe(sink, { dot_stuffed: false, ending_dot: true })
  }).then(
    (reply) => {
      const ms = Date.now() - started
      txn.results.add(this, { pass: 'archived', msg: `${reply.code} ${reply.text}` })
      connection.loginfo(this, `archived by Postern from ${hook} for ${envelope.to.length} recipient(s) in ${ms} ms: ${reply.code} ${reply.text}`)
      if (settings.mode === 'archive_only') return next(OK, `Archived (${reply.text})`)
      return next()
    },
    (err) => {
      txn.results.add(this, { fail: err.code || 'error', emit: true })
      connection.logerror(this, `not archived from ${hook} (${err.code || 'error'}): ${err.message}`)
      return next(DENYSOFT, 'Archive temporarily unavailable, try again later')
    },
  )
}
