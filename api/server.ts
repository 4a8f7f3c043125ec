import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { parse as parseYaml } from 'yaml';
import type { Runtime } from '../engine/runtime.ts';
import { NotFoundError, ValidationError } from '../engine/validation.ts';
import { authenticateKey, type Workspace } from '../engine/workspaces.ts';
import { handlers } from './handlers/index.ts';
import { type FieldError, ProblemError } from './problem.ts';
import type { HandlerContext, OperationId } from './types.ts';

export const SPEC_PATH = new URL('./openapi.yaml', import.meta.url).pathname;

declare module 'fastify' {
  interface FastifyRequest {
    workspace?: Workspace;
  }
}

export interface ServerOptions {
  /** Largest accepted request body in bytes (JSON and NDJSON); CSV imports stream past it. */
  bodyLimit?: number;
  logger?: boolean;
}

export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

export function loadSpec(): Record<string, unknown> {
  return parseYaml(readFileSync(SPEC_PATH, 'utf8')) as Record<string, unknown>;
}

export async function buildServer(runtime: Runtime, options: ServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: (options.logger === false ? undefined : runtime.log.child({ component: 'api' })) as
      | FastifyBaseLogger
      | undefined,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false, strict: false } },
  });
  const spec = loadSpec();

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = toProblem(error, request);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.status(problem.status).type('application/problem+json').send(problem);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .type('application/problem+json')
      .send({
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: `no route ${request.method} ${request.url}`,
      });
  });

  // Routes with `x-fastify-config: { rawBody: true }` (signed webhooks) get the exact bytes received,
  // since a signature covers bytes, not parsed JSON; every other route parses JSON as before.
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    if ((request.routeOptions.config as { rawBody?: boolean } | undefined)?.rawBody) return done(null, body);
    parseJson(request, (body as Buffer).toString('utf8'), done);
  });

  // NDJSON bodies arrive as text; their handlers parse and validate them item by item.
  app.addContentTypeParser(
    ['application/x-ndjson', 'application/ndjson'],
    { parseAs: 'string' },
    (_request, body, done) => done(null, body),
  );
  // CSV imports are streamed: the handler reads the raw request and enforces its own size limit.
  app.addContentTypeParser('text/csv', (_request, payload, done) => done(null, payload));

  await app.register(swagger, { mode: 'static', specification: { document: spec as never } });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => spec);

  await app.register(openapiGlue, {
    specification: spec,
    securityHandlers: {
      async bearerAuth(request: FastifyRequest) {
        const header = request.headers.authorization ?? '';
        const match = /^Bearer\s+(\S+)$/i.exec(header);
        if (!match) throw new ProblemError(401, 'Unauthorized', 'missing bearer key');
        const workspace = await authenticateKey(runtime.pg, match[1]!);
        if (!workspace) throw new ProblemError(401, 'Unauthorized', 'unknown or revoked key');
        request.workspace = workspace;
      },
    },
    operationResolver: (operationId: string) => {
      const handler = handlers[operationId as OperationId] as
        | ((context: HandlerContext<OperationId>) => Promise<{
            status: number;
            body: unknown;
            headers?: Record<string, string>;
            contentType?: string;
          }>)
        | undefined;
      if (!handler) throw new Error(`no handler for operation ${operationId}`);
      return async (request: FastifyRequest, reply) => {
        const result = await handler({
          runtime,
          workspace: request.workspace as Workspace,
          body: request.body as never,
          params: request.params as never,
          query: request.query as never,
          request,
          reply,
        });
        if (result.headers) void reply.headers(result.headers);
        if (result.contentType) void reply.type(result.contentType);
        return reply.status(result.status).send(result.status === 204 ? undefined : result.body);
      };
    },
  });
  return app;
}

function toProblem(error: FastifyError & { errors?: unknown[] }, request: FastifyRequest) {
  const base = { instance: request.url };
  if (error instanceof ProblemError) {
    return {
      type: error.type,
      title: error.title,
      status: error.status,
      detail: error.message,
      errors: error.errors,
      ...base,
    };
  }
  // Engine errors: input the domain refuses (every problem, with its path), or a missing thing.
  if (error instanceof ValidationError) {
    return {
      type: 'https://chorus.dev/problems/validation',
      title: 'Unprocessable Content',
      status: 422,
      detail: error.message,
      errors: error.errors,
      ...base,
    };
  }
  if (error instanceof NotFoundError) {
    return { type: 'about:blank', title: 'Not Found', status: 404, detail: error.message, ...base };
  }
  if (error.validation) {
    const errors: FieldError[] = error.validation.map((v) => {
      const params = v.params as Record<string, unknown>;
      const extra =
        typeof params.missingProperty === 'string'
          ? `/${params.missingProperty}`
          : typeof params.additionalProperty === 'string'
            ? `/${params.additionalProperty}`
            : '';
      const message =
        typeof params.additionalProperty === 'string' ? 'is not a known field' : (v.message ?? 'is invalid');
      return {
        path: `/${error.validationContext ?? 'body'}${v.instancePath}${extra}`,
        message,
        code: v.keyword,
      };
    });
    return {
      type: 'https://chorus.dev/problems/validation',
      title: 'Bad Request',
      status: 400,
      detail: errors.map((e) => `${e.path} ${e.message}`).join('; '),
      errors,
      ...base,
    };
  }
  // Errors raised by a security handler arrive wrapped by fastify-openapi-glue.
  const securityError = error.errors?.find((e): e is ProblemError => e instanceof ProblemError);
  if (securityError || error.statusCode === 401) {
    return {
      type: 'https://chorus.dev/problems/unauthorized',
      title: 'Unauthorized',
      status: 401,
      detail: securityError?.message ?? 'missing or invalid bearer key',
      ...base,
    };
  }
  const status =
    error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
  if (status >= 500) {
    return {
      type: 'about:blank',
      title: 'Internal Server Error',
      status,
      detail: 'unexpected error',
      ...base,
    };
  }
  const titles: Record<number, string> = {
    400: 'Bad Request',
    404: 'Not Found',
    413: 'Content Too Large',
    415: 'Unsupported Media Type',
  };
  return {
    type: 'about:blank',
    title: titles[status] ?? 'Bad Request',
    status,
    detail: error.message,
    ...base,
  };
}
