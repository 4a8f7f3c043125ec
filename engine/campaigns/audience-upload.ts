import type { Readable } from 'node:stream';
import { validateNames } from '../contacts/upsert.ts';
import { type ImportJob, type ImportOptions, importContacts } from '../imports/index.ts';
import type { Runtime } from '../runtime.ts';
import type { FieldIssue } from '../validation.ts';
import type { Workspace } from '../workspaces.ts';
import { requireCampaign, updateCampaign } from './model.ts';
import { type Campaign, CampaignError } from './types.ts';

export interface AudienceUpload {
  /** The list the file's contacts joined; the campaign's audience is now this list. */
  list: string;
  import: ImportJob;
  campaign: Campaign;
}

/** The list an upload fills when none is named: one per campaign, so re-uploading adds to it. */
export function uploadListName(campaignId: string): string {
  return `campaign:${campaignId}`.slice(0, 64);
}

/**
 * A CSV upload as a draft campaign's audience: the file is imported like any contact import (same
 * mapping, per-row error report, idempotent), every imported row also joins one list, and the
 * campaign's audience becomes that list. The campaign is only changed when at least one row landed,
 * so a file that is refused whole leaves the draft as it was.
 */
export async function uploadCampaignAudience(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  campaignId: string,
  csv: Readable | AsyncIterable<Buffer | string>,
  options: Omit<ImportOptions, 'lists'> & { list?: string },
  actor: string,
): Promise<AudienceUpload> {
  const current = await requireCampaign(runtime.pg, workspace.id, campaignId);
  if (current.state !== 'draft')
    throw new CampaignError(
      'conflict',
      `a ${current.state} campaign's audience cannot change; only drafts can`,
    );
  const list = options.list ?? uploadListName(campaignId);
  const issues: FieldIssue[] = [];
  validateNames([list], '/querystring/list', 'list', issues);
  if (issues.length)
    throw new CampaignError(
      'invalid',
      'invalid list name',
      issues.map((i) => ({ ...i, path: '/querystring/list' })),
    );
  const job = await importContacts(runtime, workspace, csv, { ...options, lists: [list] });
  if (job.rows_imported === 0)
    throw new CampaignError('invalid', `no row of the file was imported (import ${job.id})`, [
      {
        path: '/body',
        message:
          job.error ??
          `all ${job.rows_processed} rows were refused; see GET /v1/imports/${job.id}/errors for each row's reason`,
      },
    ]);
  const campaign = await updateCampaign(
    runtime.pg,
    workspace.id,
    campaignId,
    { audience: { type: 'lists', lists: [list] } },
    actor,
  );
  return { list, import: job, campaign };
}
