// Admin route POST /api/v1/import/message: one raw message (message/rfc822 body, bounded) from the
// file importer CLI, streamed into capture.submit with listener "import". With ?user=NAME the message is
// assigned exclusively to that user's archive (folder kept from ?folder=), else the multidrop router
// decides. Reports whether identical bytes were archived before (a duplicate) and, with a user, which
// folder the message goes into and whether that folder already holds it (a duplicate can still be new
// to this archive). Who may: the admin token and administrators, into any archive or through the
// router; a user with the `archive` privilege (MailStore's "archive e-mail": self-service archiving of
// one's own old mail) only with ?user= naming themselves; auditors never (they change nothing).
import { z } from 'zod';
import type { AdminRoutes } from '../admin/routes.ts';
import { HttpError } from '../admin/http.ts';
import { PosternError } from '../errors.ts';
import { TOKEN_PRINCIPAL, requirePrivilege } from '../compliance/access.ts';
import type { CaptureService } from '../intake/capture.ts';
import type { Assignment } from '../intake/intake.ts';
import { USER_NAME, blobIdentity, type ArchiveStore } from '../storage/types.ts';

export interface ImportReply {
  id: string;
  size: number;
  sha256: string;
  /** Identical bytes were already archived before this import. */
  duplicate: boolean;
  /** With ?user: the folder the message is filed into, and whether it was there already (nothing added). */
  filed?: { user: string; folder: string; alreadyThere: boolean };
}

const importQuery = z.object({
  user: z.string().optional().describe('file into this user\'s archive only (else the router decides)'), folder: z.string().optional().describe('folder, with user'),
  direction: z.enum(['received', 'sent']).optional().describe('default received'),
});
const FOLDER = /^[^\u0000-\u001f*%]{1,255}$/u;

/** FORBIDDEN unless principal may import into `user`'s archive ("" = wherever the router files it). */
export async function requireImportRight(archive: ArchiveStore, principal: string, user: string): Promise<void> {
  if (principal === TOKEN_PRINCIPAL) return;
  const have = await requirePrivilege(archive, principal, 'archive');
  if (have.has('admin')) return;
  if (user !== principal) {
    throw new PosternError('FORBIDDEN', `"${principal}" may import only into their own archive (user=${principal}${user === '' ? '' : `, not "${user}"`})`);
  }
}

export function addImportRoutes(routes: AdminRoutes, deps: { capture: CaptureService; archive: ArchiveStore; maxBytes: number; folders: { received: string; sent: string } }): void {
  // Every signed-in user reaches the area; the route checks the archive privilege itself.
  routes.reserve(['import'], 'import');
  routes.add('POST', 'import/message', async (ctx) => {
    const q = ctx.url.searchParams;
    const user = q.get('user') ?? '';
    await requireImportRight(deps.archive, ctx.principal, user);
    const folder = q.get('folder') ?? '';
    const direction = q.get('direction') ?? 'received';
    if (user !== '' && !USER_NAME.test(user)) throw new HttpError(400, `"${user}" is not a valid user name`);
    if (folder !== '' && (!FOLDER.test(folder) || folder.split('/').some((s) => s === ''))) throw new HttpError(400, `"${folder}" is not a valid folder name`);
    if (direction !== 'received' && direction !== 'sent') throw new HttpError(400, `The direction "${direction}" must be "received" or "sent"`);
    if (folder !== '' && user === '') throw new HttpError(400, 'A folder is only meaningful with user=NAME (an import into one archive)');
    if (user !== '' && !(await deps.archive.getUser(user))) throw new HttpError(404, `User "${user}" does not exist`);
    const declared = Number(ctx.req.headers['content-length'] ?? NaN);
    if (declared > deps.maxBytes) throw new HttpError(413, `Message exceeds ${deps.maxBytes} bytes`);
    const assign: Assignment | undefined = user === '' ? undefined : {
      user, direction: direction as Assignment['direction'], exclusive: true, reason: `import --user ${user}`,
      ...(folder !== '' ? { folder } : {}),
    };
    // Streamed into the intake (hashed once there); whether these bytes were archived before is
    // asked once they are all spooled, before the commit.
    let duplicate = false;
    let alreadyThere = false;
    const target = folder !== '' ? folder : direction === 'sent' ? deps.folders.sent : deps.folders.received;
    // A body over maxBytes fails with TOO_LARGE (413).
    const record = await deps.capture.submit(ctx.req as AsyncIterable<Buffer>, {
      listener: 'import',
      envelope: { mailFrom: '', rcptTo: [] },
      session: { remoteAddress: ctx.req.socket.remoteAddress ?? '', helo: 'import', user: null },
      ...(assign ? { assign } : {}),
    }, {
      maxBytes: deps.maxBytes,
      async beforeCommit({ sha256, size }) {
        if (size === 0) throw new HttpError(400, 'The message is empty');
        const known = await deps.archive.messageByIdentity(blobIdentity(sha256));
        duplicate = known !== null;
        if (known !== null && user !== '') alreadyThere = (await deps.archive.entryUidOf(user, target, known)) !== null;
      },
    });
    const body: ImportReply = {
      id: record.id, size: record.size, sha256: record.sha256, duplicate,
      ...(user !== '' ? { filed: { user, folder: target, alreadyThere } } : {}),
    };
    return { status: 201, body };
  }, 'import', { summary: 'Import one raw message through the intake (a duplicate is reported, not filed twice)', access: ['archive', 'admin'], accessNote: 'with archive alone only into one\'s own archive (user=SELF); the admin token and administrators anywhere', rawBody: 'message/rfc822', query: importQuery, responses: { 201: 'the capture, and where it was filed', 400: 'bad user, folder or direction, or an empty message', 404: 'no such user', 413: 'message too large' } });
}
