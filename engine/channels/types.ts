/**
 * What every channel adapter implements, so dispatch and webhook processing never depend on one
 * provider. WhatsApp (Cloud API) is the first; SMS and email adapters implement the same interface.
 */
export type ChannelName = 'whatsapp' | 'sms' | 'email';

/** A message rendered for one contact, ready to hand to a provider. */
export interface OutboundMessage {
  /** Chorus's id of this send; adapters echo it back (WhatsApp: biz_opaque_callback_data). */
  sendId: string;
  /** Recipient in E.164, with the leading +. */
  to: string;
  content: RenderedContent;
}

export type RenderedContent =
  | {
      type: 'template';
      name: string;
      language: string;
      /** Provider components with parameters already filled from the contact. */
      components: TemplateComponentParameters[];
    }
  | { type: 'text'; body: string; previewUrl?: boolean }
  | { type: 'media'; mediaType: 'image' | 'video' | 'document' | 'audio'; link: string; caption?: string }
  | {
      type: 'buttons';
      body: string;
      buttons: { id: string; title: string }[];
      header?: string;
      footer?: string;
    };

export interface TemplateComponentParameters {
  type: 'header' | 'body' | 'button';
  sub_type?: 'quick_reply' | 'url' | 'copy_code' | 'phone_number';
  index?: string;
  parameters: Record<string, unknown>[];
}

/** What a sender should do after an attempt; the classes of the facts page's error table. */
export type OutcomeClass =
  | 'accepted' // the provider took it; providerMessageId is set
  | 'retry' // transient: retry after retryAfterMs (backoff)
  | 'retry_after_24h' // per-user limit: not before notBefore
  | 'never' // permanent for this recipient: do not retry
  | 'stop_template' // the template cannot be sent: stop its sends
  | 'pause_campaign' // a quality problem: pause the campaign
  | 'stop_sender'; // the account is restricted: stop everything on this sender

export interface SendOutcome {
  class: OutcomeClass;
  providerMessageId?: string;
  /** Provider error code (WhatsApp: 130429, 131056, ...). */
  errorCode?: number;
  errorTitle?: string;
  errorDetails?: string;
  httpStatus?: number;
  /** For `retry`: how long to wait before the next attempt. */
  retryAfterMs?: number;
  /** For `retry_after_24h` (and any class with a floor): the earliest next attempt. */
  notBefore?: Date;
  /** The recipient opted out of this kind of message (WhatsApp 131050): record an opt-out. */
  optOut?: boolean;
  /** Throughput was exceeded (WhatsApp 130429): the sender's rate should come down. */
  slowDown?: boolean;
}

/** A provider error as the adapter saw it, before classification. */
export interface ProviderError {
  code: number;
  httpStatus?: number;
  title?: string;
  details?: string;
}

/** Normalized webhook content; one provider payload may carry many. */
export type WebhookEvent =
  | {
      kind: 'status';
      providerMessageId: string;
      status: 'sent' | 'delivered' | 'read' | 'failed' | 'played';
      timestamp: Date;
      recipient: string;
      /** Our send id when the provider echoed it. */
      sendId?: string;
      errors?: { code: number; title?: string; message?: string; details?: string }[];
      pricing?: { billable?: boolean; category?: string; type?: string };
      senderAddress?: string;
    }
  | {
      kind: 'message';
      providerMessageId: string;
      from: string;
      timestamp: Date;
      type: string;
      text?: string;
      /** Quick-reply payload or interactive reply id. */
      payload?: string;
      /** The provider id of the message this replies to (WhatsApp context.id). */
      contextMessageId?: string;
      profileName?: string;
      senderAddress?: string;
    }
  | {
      kind: 'template_status';
      event: string;
      templateId: string;
      templateName: string;
      language?: string;
      category?: string;
      reason?: string;
      otherInfo?: string;
    }
  | {
      kind: 'quality';
      senderAddress: string;
      event: string;
      currentLimit?: string;
      maxDailyConversationsPerBusiness?: number;
    }
  | { kind: 'user_preference'; recipient: string; category: string; value: string; timestamp: Date }
  | { kind: 'unknown'; field: string; value: unknown };

export interface ChannelAdapter {
  readonly channel: ChannelName;
  /** Sends one message; never throws for provider errors, which come back classified. */
  send(
    message: OutboundMessage,
    options?: { signal?: AbortSignal; attempt?: number; timeoutMs?: number },
  ): Promise<SendOutcome>;
  /** Maps a provider error to what the sender should do; attempt counts from 0 for backoff. */
  classify(error: ProviderError, attempt: number): SendOutcome;
  /** Checks a webhook's signature on its raw bytes (constant time). */
  verifyWebhook(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): boolean;
  /** Parses a verified webhook body into normalized events; throws on a malformed body. */
  parseWebhook(rawBody: Buffer): WebhookEvent[];
}
