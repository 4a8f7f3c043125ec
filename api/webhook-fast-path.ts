import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime } from '../engine/runtime.ts';
import { acceptWhatsappWebhook } from './handlers/analytics.ts';
import { problemFor } from './problem.ts';

const WEBHOOK_PREFIX = '/webhooks/whatsapp/';
// Plain sender ids only: an encoded id, a query string or a longer path goes to the Fastify route.
const PLAIN_SENDER_ID = /^[A-Za-z0-9_-]{1,100}$/;
const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;

/**
 * The provider webhook POST served by node:http ahead of Fastify's router. At thousands of
 * single-status POSTs a second, Fastify's routing, hooks, schema checks and reply pipeline are a
 * large share of the API's CPU per request. Only the plain case is taken: POST, a plain sender id,
 * `application/json` with a Content-Length within the body limit. Everything else (chunked bodies,
 * other types, oversized bodies, odd URLs) returns false and goes to the Fastify route, which has
 * the same semantics; both answer through `acceptWhatsappWebhook`, so status codes and problem
 * bodies are the same.
 */
export function webhookFastPath(
  runtime: Runtime,
  bodyLimit: number,
): (request: IncomingMessage, response: ServerResponse) => boolean {
  return (request, response) => {
    if (request.method !== 'POST') return false;
    const url = request.url;
    if (!url?.startsWith(WEBHOOK_PREFIX)) return false;
    const senderId = url.slice(WEBHOOK_PREFIX.length);
    if (!PLAIN_SENDER_ID.test(senderId)) return false;
    const contentType = request.headers['content-type'];
    if (contentType === undefined || !JSON_CONTENT_TYPE.test(contentType)) return false;
    const length = Number(request.headers['content-length']);
    if (!(length > 0 && length <= bodyLimit) || request.headers['transfer-encoding'] !== undefined) {
      return false;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A body cut short by the client ends in 'error' or 'aborted', never 'end': nothing is stored.
    request.on('error', () => response.destroy());
    request.on('end', () => {
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      acceptWhatsappWebhook(runtime, senderId, raw, request.headers).then(
        (ack) => answer(response, 200, 'application/json; charset=utf-8', JSON.stringify(ack)),
        (error: unknown) => {
          const problem = problemFor(error, url);
          if (problem.status >= 500) runtime.log.error({ err: error, url }, 'request failed');
          answer(
            response,
            problem.status,
            'application/problem+json; charset=utf-8',
            JSON.stringify(problem),
          );
        },
      );
    });
    return true;
  };
}

function answer(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
