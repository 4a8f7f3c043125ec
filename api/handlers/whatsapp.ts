import * as senders from '../../engine/senders.ts';
import { ProblemError } from '../problem.ts';
import type { Handler } from '../types.ts';

function senderProblem(error: unknown): unknown {
  if (!(error instanceof senders.SenderError)) return error;
  const title = { 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Content' }[error.status];
  return new ProblemError(error.status, title, error.message, error.errors);
}

export const listSenders: Handler<'listSenders'> = async ({ runtime, workspace }) => ({
  status: 200,
  body: { data: (await senders.listSenders(runtime.pg, workspace.id)).map(senders.publicSender) },
});

export const createSender: Handler<'createSender'> = async ({ runtime, workspace, body }) => {
  try {
    return {
      status: 201,
      body: senders.publicSender(await senders.createSender(runtime.pg, workspace.id, body)),
    };
  } catch (error) {
    throw senderProblem(error);
  }
};

export const getSender: Handler<'getSender'> = async ({ runtime, workspace, params }) => {
  const sender = await senders.getSender(runtime.pg, workspace.id, params.senderId);
  if (!sender) throw new ProblemError(404, 'Not Found', `no sender ${params.senderId}`);
  return { status: 200, body: senders.publicSender(sender) };
};

export const updateSender: Handler<'updateSender'> = async ({ runtime, workspace, params, body }) => {
  try {
    const updated = await senders.updateSender(runtime.pg, workspace.id, params.senderId, body);
    return { status: 200, body: senders.publicSender(updated) };
  } catch (error) {
    throw senderProblem(error);
  }
};

export const deleteSender: Handler<'deleteSender'> = async ({ runtime, workspace, params }) => {
  if (!(await senders.deleteSender(runtime.pg, workspace.id, params.senderId)))
    throw new ProblemError(404, 'Not Found', `no sender ${params.senderId}`);
  return { status: 204, body: undefined };
};
