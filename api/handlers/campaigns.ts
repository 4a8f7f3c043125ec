import type { FastifyRequest } from 'fastify';
import { uploadCampaignAudience as uploadAudience } from '../../engine/campaigns/audience-upload.ts';
import {
  campaignProgress,
  cancelCampaign as cancelEngine,
  pauseCampaign as pauseEngine,
  resumeCampaign as resumeEngine,
} from '../../engine/campaigns/control.ts';
import { launchCampaign as launch, reviewCampaign as review } from '../../engine/campaigns/launch.ts';
import {
  auditLog,
  createCampaign as create,
  listCampaigns as list,
  requireCampaign,
  updateCampaign as update,
} from '../../engine/campaigns/model.ts';
import { type Campaign, CampaignError, type CampaignInput } from '../../engine/campaigns/types.ts';
import { kickLocalDispatchers } from '../../jobs/dispatch/index.ts';
import { withCsvBody } from '../csv-body.ts';
import { conflict, notFound, unprocessable } from '../problem.ts';
import type { Handler } from '../types.ts';

/** Who did it, for the audit log: the key's public prefix (never the secret). */
function actorOf(request: FastifyRequest): string {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  return match ? `key:${match[1]!.slice(0, 12)}` : 'api';
}

/** Engine errors carry engine-relative paths; the API reports them under /body. */
function toProblem(error: unknown): never {
  if (error instanceof CampaignError) {
    const errors = error.errors.map((e) => ({
      ...e,
      path: /^\/(body|querystring)/.test(e.path) ? e.path : `/body${e.path}`,
    }));
    if (error.kind === 'not_found') throw notFound(error.message);
    if (error.kind === 'conflict') throw conflict(error.message, errors);
    throw unprocessable(error.message, errors);
  }
  throw error;
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    toProblem(error);
  }
}

// The spec's Campaign mirrors the engine's; the cast bridges nominal differences of optional fields.
const out = (campaign: Campaign) => campaign as never;

export const createCampaign: Handler<'createCampaign'> = async ({ runtime, workspace, body, request }) =>
  guard(async () => ({
    status: 201,
    body: out(await create(runtime.pg, workspace.id, body as unknown as CampaignInput, actorOf(request))),
  }));

export const listCampaigns: Handler<'listCampaigns'> = async ({ runtime, workspace, query }) => ({
  status: 200,
  body: {
    campaigns: (await list(runtime.pg, workspace.id, { state: query.state, limit: query.limit })).map(out),
  },
});

export const getCampaign: Handler<'getCampaign'> = async ({ runtime, workspace, params }) =>
  guard(async () => {
    const campaign = await requireCampaign(runtime.pg, workspace.id, params.id);
    return {
      status: 200,
      body: { ...campaign, audit: await auditLog(runtime.pg, workspace.id, params.id) } as never,
    };
  });

export const updateCampaign: Handler<'updateCampaign'> = async ({
  runtime,
  workspace,
  params,
  body,
  request,
}) =>
  guard(async () => ({
    status: 200,
    body: out(
      await update(
        runtime.pg,
        workspace.id,
        params.id,
        body as unknown as Partial<CampaignInput>,
        actorOf(request),
      ),
    ),
  }));

export const reviewCampaign: Handler<'reviewCampaign'> = async ({ runtime, workspace, params }) =>
  guard(async () => ({ status: 200, body: (await review(runtime, workspace.id, params.id)) as never }));

export const launchCampaign: Handler<'launchCampaign'> = async ({ runtime, workspace, params, request }) =>
  guard(async () => {
    const result = await launch(runtime, workspace.id, params.id, actorOf(request));
    // A worker in this process starts at once; other processes pick it up on their next pump.
    void kickLocalDispatchers().catch(() => {});
    return { status: 200, body: result as never };
  });

export const pauseCampaign: Handler<'pauseCampaign'> = async ({
  runtime,
  workspace,
  params,
  body,
  request,
}) =>
  guard(async () => ({
    status: 200,
    body: out(await pauseEngine(runtime.pg, workspace.id, params.id, actorOf(request), body?.reason)),
  }));

export const resumeCampaign: Handler<'resumeCampaign'> = async ({ runtime, workspace, params, request }) =>
  guard(async () => {
    const campaign = await resumeEngine(runtime.pg, workspace.id, params.id, actorOf(request));
    void kickLocalDispatchers().catch(() => {});
    return { status: 200, body: out(campaign) };
  });

export const cancelCampaign: Handler<'cancelCampaign'> = async ({
  runtime,
  workspace,
  params,
  body,
  request,
}) =>
  guard(async () => ({
    status: 200,
    body: out(await cancelEngine(runtime.pg, workspace.id, params.id, actorOf(request), body?.reason)),
  }));

export const getCampaignProgress: Handler<'getCampaignProgress'> = async ({ runtime, workspace, params }) =>
  guard(async () => ({
    status: 200,
    body: (await campaignProgress(runtime.pg, workspace.id, params.id)) as never,
  }));

export const uploadCampaignAudience: Handler<'uploadCampaignAudience'> = async ({
  runtime,
  workspace,
  params,
  query,
  request,
}) =>
  guard(() =>
    withCsvBody(request, async (body, size) => ({
      status: 201,
      body: (await uploadAudience(
        runtime,
        workspace,
        params.id,
        body,
        { mapping: query.mapping, fileName: query.file_name, list: query.list, ...size },
        actorOf(request),
      )) as never,
    })),
  );
