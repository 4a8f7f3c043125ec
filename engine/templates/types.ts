/** A Chorus message template: what users write, and what the registry stores. */
import type { ChannelName } from '../channels/types.ts';
import type { HeaderFormat, TemplateCategory } from './validation.ts';

/** Where a variable's value comes from, and how it is typed for the provider. */
export interface VariableBinding {
  /** A contact attribute or built-in field (phone, external_id, country, language, timezone). */
  attribute?: string;
  /** A fixed value instead of an attribute. */
  value?: string;
  /** text (default), currency (a number with currency_code) or date_time (a date or datetime). */
  type?: 'text' | 'currency' | 'date_time';
  /** Used when the contact has no value; without one, rendering fails for that contact. */
  fallback?: string;
  /** Shown to Meta's reviewers; defaults to the fallback or fixed value. */
  example?: string;
  /** ISO 4217, for currency. */
  currency_code?: string;
}

export type TemplateButton =
  | { type: 'QUICK_REPLY'; text: string; payload?: string }
  | { type: 'URL'; text: string; url: string }
  | { type: 'PHONE_NUMBER'; text: string; phone_number: string }
  | { type: 'COPY_CODE'; example: string };

/** Free-form content: WhatsApp session messages and other channels; same variables. */
export type MessageContent =
  | { type: 'text'; text: string }
  | { type: 'media'; media_type: 'image' | 'video' | 'document' | 'audio'; link: string; caption?: string }
  | {
      type: 'buttons';
      text: string;
      buttons: { id: string; title: string }[];
      header?: string;
      footer?: string;
    };

export interface TemplateInput {
  name: string;
  language: string;
  category: TemplateCategory;
  channel?: ChannelName;
  /** The sender (and so the WhatsApp Business Account) it is submitted through. */
  sender_id?: string | null;
  parameter_format?: 'POSITIONAL' | 'NAMED';
  header?: { format: HeaderFormat; text?: string; link?: string } | null;
  body?: string;
  footer?: string | null;
  buttons?: TemplateButton[];
  /** Free-form content instead of a reviewed WhatsApp template. */
  content?: MessageContent | null;
  /**
   * Variable bindings by reference: `body.1`, `body.first_name`, `header.1`, `buttons.0.1` (URL),
   * `buttons.2.code` (copy code), and for free-form content `text.name`, `header.name`, `footer.name`.
   */
  variables?: Record<string, VariableBinding>;
}

export const TEMPLATE_STATUSES = [
  'DRAFT',
  'READY',
  'PENDING',
  'APPROVED',
  'REJECTED',
  'PAUSED',
  'DISABLED',
  'IN_APPEAL',
  'FLAGGED',
  'LIMIT_EXCEEDED',
  'LOCKED',
  'ARCHIVED',
  'DELETED',
  'PENDING_DELETION',
] as const;
export type TemplateStatus = (typeof TEMPLATE_STATUSES)[number];

/** Statuses in which dispatch may send the template (READY: free-form content, no review). */
export const SENDABLE_STATUSES: readonly TemplateStatus[] = ['APPROVED', 'FLAGGED', 'READY'];

export interface Template extends Required<Pick<TemplateInput, 'name' | 'language' | 'category'>> {
  id: string;
  workspace_id: string;
  channel: ChannelName;
  sender_id: string | null;
  parameter_format: 'POSITIONAL' | 'NAMED';
  header: { format: HeaderFormat; text?: string; link?: string } | null;
  body: string | null;
  footer: string | null;
  buttons: TemplateButton[];
  content: MessageContent | null;
  variables: Record<string, VariableBinding>;
  status: TemplateStatus;
  /** Why it was rejected, paused or disabled (Meta's reason or other_info title). */
  status_reason: string | null;
  provider_template_id: string | null;
  submitted_at: string | null;
  status_updated_at: string | null;
  created_at: string;
  updated_at: string;
}
