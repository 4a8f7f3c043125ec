import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
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
import { authenticateKey, type Workspace } from '../engine/workspaces.ts';
import { handlers } from './handlers/index.ts';
import { ProblemError, problemFor } from './problem.ts';
import type { HandlerContext, OperationId } from './types.ts';
import { webhookFastPath } from './webhook-fast-path.ts';

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
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // Provider webhook POSTs are served by node:http before Fastify sees them (see webhook-fast-path.ts);
  // the server is otherwise set up as Fastify sets up its own.
  const fastWebhook = webhookFastPath(runtime, bodyLimit);
  const app = Fastify({
    loggerInstance: (options.logger === false ? undefined : runtime.log.child({ component: 'api' })) as
      | FastifyBaseLogger
      | undefined,
    bodyLimit,
    serverFactory: (handler, settings) => {
      const server = createServer((request, response) => {
        if (!fastWebhook(request, response)) handler(request, response);
      });
      if (typeof settings.keepAliveTimeout === 'number') server.keepAliveTimeout = settings.keepAliveTimeout;
      if (typeof settings.requestTimeout === 'number') server.requestTimeout = settings.requestTimeout;
      if (typeof settings.connectionTimeout === 'number') server.setTimeout(settings.connectionTimeout);
      return server;
    },
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false, strict: false } },
  });
  const spec = loadSpec();

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = problemFor(error, request.url);
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
