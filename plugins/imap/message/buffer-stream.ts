// A buffer in memory as a Readable. Iterating it yields the buffer from a plain generator, so a reader
// that stops early (a section, a matched search) costs nothing: breaking out of a Readable's own
// iterator builds an AbortError with a stack trace, which showed up as a tenth of the CPU.
import { Readable } from 'node:stream';

export class BufferStream extends Readable {
  constructor(private readonly bytes: Buffer) {
    super();
  }
  override _read(): void {
    if (this.bytes.length > 0) this.push(this.bytes);
    this.push(null);
  }
  override [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    const bytes = this.bytes;
    return (async function* () {
      if (bytes.length > 0) yield bytes;
    })();
  }
}
