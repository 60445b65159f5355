// Text of a PDF attachment for the search index, through Mozilla's pdf.js (pdfjs-dist, legacy build
// for Node; loaded on first use, so workers that never see a PDF never load it). Runs inside an
// analysis worker: bounded in pages, characters and time per attachment; a PDF that fails or runs out
// of time throws, and the caller records the failure and goes on. Trusts nothing about the bytes.

export const PDF_LIMITS = { maxBytes: 16 * 1024 * 1024, maxPages: 200, maxChars: 1024 * 1024, timeoutMs: 3_000 } as const;

interface TextItem {
  str?: string;
}
interface PdfPage {
  getTextContent(): Promise<{ items: TextItem[] }>;
  cleanup(): void;
}
interface PdfDocument {
  numPages: number;
  getPage(n: number): Promise<PdfPage>;
  destroy(): Promise<void>;
}
interface PdfJs {
  getDocument(options: Record<string, unknown>): { promise: Promise<PdfDocument>; destroy(): Promise<void> };
}

let pdfjs: Promise<PdfJs> | null = null;

/** Load pdf.js now (it takes a moment the first time in a thread). */
export async function loadPdfJs(): Promise<void> {
  await load();
}

async function load(): Promise<PdfJs> {
  pdfjs ??= import('pdfjs-dist/legacy/build/pdf.mjs') as unknown as Promise<PdfJs>;
  return pdfjs;
}

/** The text of a PDF, pages joined by line breaks, cut at PDF_LIMITS.maxChars. */
export async function pdfText(bytes: Buffer): Promise<string> {
  if (bytes.length > PDF_LIMITS.maxBytes) throw new Error(`larger than ${PDF_LIMITS.maxBytes} bytes`);
  const lib = await load();
  // pdf.js may keep a reference to (and detach) the array: hand it a copy.
  const task = lib.getDocument({ data: new Uint8Array(bytes), isEvalSupported: false, disableFontFace: true, useSystemFonts: false, verbosity: 0, stopAtErrors: false });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no text after ${PDF_LIMITS.timeoutMs} ms`)), PDF_LIMITS.timeoutMs);
  });
  try {
    return await Promise.race([timeout, (async () => {
      const doc = await task.promise;
      const parts: string[] = [];
      let chars = 0;
      for (let n = 1; n <= Math.min(doc.numPages, PDF_LIMITS.maxPages) && chars < PDF_LIMITS.maxChars; n++) {
        const page = await doc.getPage(n);
        const content = await page.getTextContent();
        const text = content.items.map((i) => i.str ?? '').join(' ');
        parts.push(text);
        chars += text.length + 1;
        page.cleanup();
      }
      return parts.join('\n').slice(0, PDF_LIMITS.maxChars);
    })()]);
  } finally {
    clearTimeout(timer);
    await task.destroy().catch(() => undefined);
  }
}
