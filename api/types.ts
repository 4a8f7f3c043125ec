import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../engine/runtime.ts';
import type { Workspace } from '../engine/workspaces.ts';
import type { operations } from './openapi.d.ts';

// Handler types are derived from the spec's generated types, so `npm run typecheck` fails when a
// handler drifts from api/openapi.yaml (a missing operation, a wrong body, a wrong response shape).
export type OperationId = keyof operations;
type Op<K extends OperationId> = operations[K];

type ContentOf<T> = T extends { content: infer C } ? C[keyof C] : undefined;
export type RequestBody<K extends OperationId> =
  Op<K> extends { requestBody: infer B }
    ? ContentOf<B>
    : Op<K> extends { requestBody?: infer B }
      ? ContentOf<B> | undefined
      : undefined;
type ParamsIn<K extends OperationId, In extends string> =
  Op<K>['parameters'] extends Record<In, infer P> ? NonNullable<P> : Record<string, never>;
export type PathParams<K extends OperationId> = ParamsIn<K, 'path'>;
export type QueryParams<K extends OperationId> = ParamsIn<K, 'query'>;

type SuccessStatus = 200 | 201 | 202 | 204;
type Responses<K extends OperationId> = Op<K>['responses'];
export type HandlerResult<K extends OperationId> = {
  [S in keyof Responses<K>]: S extends SuccessStatus
    ? { status: S; body: ContentOf<Responses<K>[S]>; headers?: Record<string, string>; contentType?: string }
    : never;
}[keyof Responses<K>];

export interface HandlerContext<K extends OperationId> {
  runtime: Runtime;
  /** The key's workspace; absent only on operations without security (health checks). */
  workspace: Workspace;
  body: RequestBody<K>;
  params: PathParams<K>;
  query: QueryParams<K>;
  request: FastifyRequest;
  reply: FastifyReply;
}

export type Handler<K extends OperationId> = (context: HandlerContext<K>) => Promise<HandlerResult<K>>;
export type Handlers = { [K in OperationId]: Handler<K> };
