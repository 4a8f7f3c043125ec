import { getContact } from '../../engine/contacts/index.ts';
import type { Contact } from '../../engine/contacts/types.ts';
import * as senders from '../../engine/senders.ts';
import * as templates from '../../engine/templates/index.ts';
import { NotFoundError, ValidationError } from '../../engine/validation.ts';
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

// ---------------------------------------------------------------- templates

function templateProblem(error: unknown): unknown {
  const prefix = (issues: { path: string; message: string; code?: string }[]) =>
    issues.map((i) => ({ ...i, path: `/body${i.path === '/' ? '' : i.path}` }));
  if (error instanceof ValidationError)
    return new ProblemError(422, 'Unprocessable Content', error.message, prefix(error.errors));
  if (error instanceof NotFoundError) return new ProblemError(404, 'Not Found', error.message);
  if (error instanceof templates.TemplateConflictError)
    return new ProblemError(409, 'Conflict', error.message, prefix(error.errors));
  if (error instanceof templates.TemplateProviderError)
    return new ProblemError(
      error.status,
      error.status === 502 ? 'Bad Gateway' : 'Unprocessable Content',
      error.message,
      prefix(error.errors),
    );
  return error;
}

const asTemplateJson = (t: templates.Template) => t as never;

export const listTemplates: Handler<'listTemplates'> = async ({ runtime, workspace, query }) => ({
  status: 200,
  body: {
    data: (
      await templates.listTemplates(runtime.pg, workspace.id, {
        status: query.status,
        channel: query.channel,
      })
    ).map(asTemplateJson),
  },
});

export const createTemplate: Handler<'createTemplate'> = async ({ runtime, workspace, body }) => {
  try {
    const created = await templates.createTemplate(runtime, workspace.id, body as templates.TemplateInput);
    return { status: 201, body: asTemplateJson(created) };
  } catch (error) {
    throw templateProblem(error);
  }
};

export const getTemplate: Handler<'getTemplate'> = async ({ runtime, workspace, params }) => {
  const template = await templates.getTemplate(runtime.pg, workspace.id, params.templateId);
  if (!template) throw new ProblemError(404, 'Not Found', `no template ${params.templateId}`);
  return { status: 200, body: asTemplateJson(template) };
};

export const replaceTemplate: Handler<'replaceTemplate'> = async ({ runtime, workspace, params, body }) => {
  try {
    const updated = await templates.updateTemplate(
      runtime,
      workspace.id,
      params.templateId,
      body as templates.TemplateInput,
    );
    return { status: 200, body: asTemplateJson(updated) };
  } catch (error) {
    throw templateProblem(error);
  }
};

export const deleteTemplate: Handler<'deleteTemplate'> = async ({ runtime, workspace, params }) => {
  try {
    await templates.deleteTemplate(runtime, workspace.id, params.templateId);
    return { status: 204, body: undefined };
  } catch (error) {
    throw templateProblem(error);
  }
};

export const submitTemplate: Handler<'submitTemplate'> = async ({ runtime, workspace, params }) => {
  try {
    return {
      status: 200,
      body: asTemplateJson(await templates.submitTemplate(runtime, workspace.id, params.templateId)),
    };
  } catch (error) {
    throw templateProblem(error);
  }
};

export const previewTemplate: Handler<'previewTemplate'> = async ({ runtime, workspace, params, body }) => {
  const template = await templates.getTemplate(runtime.pg, workspace.id, params.templateId);
  if (!template) throw new ProblemError(404, 'Not Found', `no template ${params.templateId}`);
  let contact: Partial<Contact>;
  if (body.contact_id) {
    const found = await getContact(runtime, workspace.id, body.contact_id);
    if (!found) throw new ProblemError(404, 'Not Found', `no contact ${body.contact_id}`);
    contact = found;
  } else if (body.contact) contact = body.contact as Partial<Contact>;
  else
    throw new ProblemError(400, 'Bad Request', 'give contact_id or contact', [
      { path: '/body/contact_id', message: 'give contact_id or an inline contact' },
    ]);
  return { status: 200, body: templates.previewTemplate(template, contact) as never };
};

export const listTemplateEvents: Handler<'listTemplateEvents'> = async ({ runtime, workspace, params }) => {
  const template = await templates.getTemplate(runtime.pg, workspace.id, params.templateId);
  if (!template) throw new ProblemError(404, 'Not Found', `no template ${params.templateId}`);
  return {
    status: 200,
    body: { data: await templates.templateStatusEvents(runtime.pg, workspace.id, template.id) },
  };
};
