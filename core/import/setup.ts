// Wires the importers into the app: the file-import admin route and the IMAP/POP3/IMAP-batch import job kinds.
import type { App } from '../app/app.ts';
import { addImportRoutes } from './route.ts';
import { imapImportKind } from './imap-kind.ts';
import { pop3ImportKind } from './pop3-kind.ts';
import { createReportMailer } from './report-mail.ts';
import { OAuth2Tokens } from './oauth2.ts';
import { imapBatchKind } from './imap-batch-kind.ts';

export function setupImport(app: App): void {
  const config = app.service('config');
  const capture = app.service('capture');
  const archive = app.service('archive');
  const log = app.service('log').child({ component: 'import' });
  addImportRoutes(app.service('adminRoutes'), {
    capture, archive, maxBytes: config.smtp.maxMessageSize, folders: { received: config.routing.receivedFolder, sent: config.routing.sentFolder },
  });
  const deps = { capture, archive, log, mailer: createReportMailer(config.jobReports, log), maxBytes: config.smtp.maxMessageSize, tokens: new OAuth2Tokens(), metrics: app.service('metrics') };
  const jobs = app.service('jobs');
  jobs.registerKind(imapImportKind(deps));
  jobs.registerKind(pop3ImportKind(deps));
  jobs.registerKind(imapBatchKind(deps));
}
