import type { ChannelAdapter, OutboundMessage, ProviderError, SendOutcome, WebhookEvent } from '../types.ts';
import {
  type BackoffPolicy,
  type ClassifyOptions,
  classifyWhatsAppError,
  DEFAULT_BACKOFF,
} from './classify.ts';
import { buildMessagePayload } from './payload.ts';
import { postJson } from './transport.ts';
import { parseWhatsAppWebhook, verifyWebhookSignature } from './webhooks.ts';

export interface WhatsAppAdapterConfig {
  /** e.g. https://graph.facebook.com, or a simulator's URL. */
  baseUrl: string;
  /** Graph API version, e.g. v23.0. */
  apiVersion: string;
  phoneNumberId: string;
  accessToken: string;
  appSecret: string;
  /** Per-request timeout; a timeout is classified as retry. */
  timeoutMs?: number;
  backoff?: BackoffPolicy;
  overrides?: ClassifyOptions['overrides'];
  now?: () => number;
  /** A fetch to send through instead of the built-in keep-alive HTTP client (tests, proxies). */
  fetch?: typeof fetch;
}

/** The WhatsApp Cloud API adapter: one instance per sender (business phone number). */
export class WhatsAppAdapter implements ChannelAdapter {
  readonly channel = 'whatsapp' as const;
  readonly config: WhatsAppAdapterConfig;
  readonly messagesUrl: string;
  private readonly url: URL;
  private readonly headers: Record<string, string>;

  constructor(config: WhatsAppAdapterConfig) {
    this.config = config;
    this.messagesUrl = `${config.baseUrl.replace(/\/+$/, '')}/${config.apiVersion}/${config.phoneNumberId}/messages`;
    this.url = new URL(this.messagesUrl);
    this.headers = { authorization: `Bearer ${config.accessToken}`, 'content-type': 'application/json' };
  }

  async send(
    message: OutboundMessage,
    options: { signal?: AbortSignal; attempt?: number; timeoutMs?: number } = {},
  ): Promise<SendOutcome> {
    const attempt = options.attempt ?? 0;
    const timeoutMs = Math.min(
      this.config.timeoutMs ?? 10_000,
      options.timeoutMs ?? Number.POSITIVE_INFINITY,
    );
    const body = JSON.stringify(buildMessagePayload(message));
    let response: { ok: boolean; status: number; header(name: string): string | undefined };
    let text: string;
    try {
      if (this.config.fetch) {
        const timeout = AbortSignal.timeout(timeoutMs);
        const answer = await this.config.fetch(this.messagesUrl, {
          method: 'POST',
          headers: this.headers,
          body,
          signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
        });
        text = await answer.text();
        response = {
          ok: answer.ok,
          status: answer.status,
          header: (name) => answer.headers.get(name) ?? undefined,
        };
      } else {
        const answer = await postJson(this.url, this.headers, body, timeoutMs, options.signal);
        response = answer;
        text = answer.text;
      }
    } catch (error) {
      // Network errors and timeouts: the message may or may not have gone; retrying is what Meta's
      // retry advice and our idempotent send id (biz_opaque_callback_data) allow.
      const name = (error as Error).name;
      return {
        ...this.classify(
          {
            code: 0,
            title: name === 'TimeoutError' ? 'timeout' : 'network error',
            details: (error as Error).message,
          },
          attempt,
        ),
        class: 'retry',
      };
    }
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {
      // A proxy's HTML error page: classify on the status alone.
    }
    if (response.ok) {
      const id = (json.messages as { id?: string }[] | undefined)?.[0]?.id;
      if (id) return { class: 'accepted', providerMessageId: id, httpStatus: response.status };
    }
    const error = (json.error ?? {}) as {
      code?: number;
      message?: string;
      error_data?: { details?: string };
    };
    const retryAfter = Number(response.header('retry-after'));
    return classifyWhatsAppError(
      {
        code: typeof error.code === 'number' ? error.code : 0,
        httpStatus: response.status,
        title: error.message ?? `HTTP ${response.status}`,
        details: error.error_data?.details,
      },
      attempt,
      {
        ...this.classifyOptions(),
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      },
    );
  }

  classify(error: ProviderError, attempt: number): SendOutcome {
    return classifyWhatsAppError(error, attempt, this.classifyOptions());
  }

  verifyWebhook(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): boolean {
    return verifyWebhookSignature(rawBody, headers, this.config.appSecret);
  }

  parseWebhook(rawBody: Buffer): WebhookEvent[] {
    return parseWhatsAppWebhook(rawBody);
  }

  private classifyOptions(): ClassifyOptions {
    return {
      backoff: this.config.backoff ?? DEFAULT_BACKOFF,
      now: this.config.now,
      overrides: this.config.overrides,
    };
  }
}
