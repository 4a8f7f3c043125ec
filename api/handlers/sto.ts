import { getContact } from '../../engine/contacts/index.ts';
import { planSendTimes } from '../../engine/sto/chooser.ts';
import { latestEvaluation } from '../../engine/sto/evaluate.ts';
import { latestFit } from '../../engine/sto/fit.ts';
import { SendTimeInputError } from '../../engine/sto/slots.ts';
import { notFound, unprocessable } from '../problem.ts';
import type { Handler } from '../types.ts';

export const getContactSendTime: Handler<'getContactSendTime'> = async ({
  runtime,
  workspace,
  params,
  query,
}) => {
  const contact = await getContact(runtime, workspace.id, params.id);
  if (!contact) throw notFound(`no contact ${params.id}`);
  if ((query.quiet_start === undefined) !== (query.quiet_end === undefined))
    throw unprocessable('quiet hours need both ends', [
      {
        path: query.quiet_start === undefined ? '/querystring/quiet_start' : '/querystring/quiet_end',
        message: 'give quiet_start and quiet_end together',
      },
    ]);
  const quietHours =
    query.quiet_start !== undefined && query.quiet_end !== undefined
      ? { start: query.quiet_start, end: query.quiet_end }
      : undefined;
  const window = { start: new Date(query.window_start), end: new Date(query.window_end) };
  let result: Awaited<ReturnType<typeof planSendTimes>>;
  try {
    result = await planSendTimes(
      runtime,
      {
        workspaceId: workspace.id,
        contacts: [{ id: contact.id, timezone: contact.timezone, country: contact.country }],
        window,
        quietHours,
        explorationShare: 0,
      },
      { confidence: true },
    );
  } catch (error) {
    if (error instanceof SendTimeInputError)
      throw unprocessable(error.message, [
        { path: `/querystring/${error.path}`, message: error.message, code: error.code },
      ]);
    throw error;
  }
  const detail = result.details[0]!;
  if (!detail.plan)
    throw unprocessable(
      `the whole window falls in the contact's quiet hours (local time in ${detail.timezone})`,
      [
        {
          path: '/querystring/window_start',
          message: 'no allowed hour between window_start and window_end',
          code: 'window_in_quiet_hours',
        },
      ],
    );
  const fit = await latestFit(runtime, workspace.id);
  return {
    status: 200,
    body: {
      contact_id: contact.id,
      timezone: detail.timezone,
      timezone_source: detail.timezoneSource,
      at: detail.plan.at.toISOString(),
      local_hour: detail.localHour!,
      expected_rate: detail.expectedRate!,
      runner_up: detail.runnerUp
        ? {
            at: detail.runnerUp.at.toISOString(),
            local_hour: detail.runnerUp.localHour,
            expected_rate: detail.runnerUp.expectedRate,
          }
        : null,
      confidence: detail.confidence ?? 1,
      source: detail.source,
      history: detail.history,
      fit_id: fit?.id ?? null,
    },
  };
};

export const getSendTimeModel: Handler<'getSendTimeModel'> = async ({ runtime, workspace }) => {
  const fit = await latestFit(runtime, workspace.id);
  if (!fit) throw notFound('no send-time fit yet: run `chorus sto fit` or wait for the nightly job');
  return {
    status: 200,
    body: {
      id: fit.id,
      since: new Date(fit.since).toISOString(),
      until: new Date(fit.until).toISOString(),
      cohort: fit.cohort,
      kappa_contact: Number(fit.kappa_contact),
      kappa_cohort: Number(fit.kappa_cohort),
      contacts: Number(fit.contacts),
      sends: Number(fit.sends),
      engaged: Number(fit.engaged),
      finished_at: new Date(fit.finished_at).toISOString(),
    },
  };
};

export const getSendTimeEvaluation: Handler<'getSendTimeEvaluation'> = async ({ runtime, workspace }) => {
  const report = await latestEvaluation(runtime, workspace.id);
  if (!report) throw notFound('no send-time evaluation yet: run `chorus sto evaluate`');
  return { status: 200, body: report };
};
