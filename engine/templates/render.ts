/** Filling a template for one contact: what dispatch sends, and what a preview shows. */
import { DateTime } from 'luxon';
import type { RenderedContent, TemplateComponentParameters } from '../channels/types.ts';
import type { Contact } from '../contacts/types.ts';
import { CONTACT_FIELDS, variableUses } from './definition.ts';
import type { Template, TemplateInput, VariableBinding } from './types.ts';

export interface ResolvedValue {
  /** The text shown to the person. */
  text: string;
  source: 'attribute' | 'value' | 'fallback';
  /** The provider parameter for this value (typed: text, currency, date_time). */
  parameter: Record<string, unknown>;
}

export class TemplateRenderError extends Error {
  readonly missing: string[];
  constructor(templateName: string, missing: string[]) {
    super(`template ${templateName}: no value and no fallback for ${missing.join(', ')}`);
    this.name = 'TemplateRenderError';
    this.missing = missing;
  }
}

type Renderable = Pick<
  Template,
  | 'name'
  | 'language'
  | 'header'
  | 'body'
  | 'footer'
  | 'buttons'
  | 'content'
  | 'variables'
  | 'parameter_format'
>;

const VARIABLE = /\{\{([^{}]*)\}\}/g;

function rawValue(binding: VariableBinding, contact: Partial<Contact>): unknown {
  if (binding.value !== undefined) return binding.value;
  const name = binding.attribute!;
  const value =
    name in CONTACT_FIELDS ? (contact as Record<string, unknown>)[name] : contact.attributes?.[name];
  if (value === null || value === undefined || value === '') return undefined;
  if (Array.isArray(value)) return value.length ? value.join(', ') : undefined;
  return value;
}

function locale(contact: Partial<Contact>, template: Renderable): string {
  return (contact.language ?? template.language).replace('_', '-');
}

function resolve(
  binding: VariableBinding,
  contact: Partial<Contact>,
  template: Renderable,
): ResolvedValue | undefined {
  const raw = rawValue(binding, contact);
  const source = binding.value !== undefined ? 'value' : 'attribute';
  const type = binding.type ?? 'text';
  if (raw !== undefined) {
    if (type === 'currency') {
      const amount = Number(raw);
      if (Number.isFinite(amount)) {
        const code = binding.currency_code ?? 'USD';
        let text: string;
        try {
          text = new Intl.NumberFormat(locale(contact, template), {
            style: 'currency',
            currency: code,
          }).format(amount);
        } catch {
          text = `${code} ${amount.toFixed(2)}`;
        }
        return {
          text,
          source,
          parameter: {
            type: 'currency',
            currency: { fallback_value: text, code, amount_1000: Math.round(amount * 1000) },
          },
        };
      }
    } else if (type === 'date_time') {
      const zone = contact.timezone ?? 'UTC';
      const iso = String(raw);
      const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(iso);
      const dt = DateTime.fromISO(iso, { zone: dateOnly ? 'UTC' : zone });
      if (dt.isValid) {
        const shown = (dateOnly ? dt : dt.setZone(zone)).setLocale(locale(contact, template));
        const text = shown.toLocaleString(dateOnly ? DateTime.DATE_MED : DateTime.DATETIME_MED);
        return { text, source, parameter: { type: 'date_time', date_time: { fallback_value: text } } };
      }
    } else {
      const text = String(raw)
        .replace(/[\n\t]+/g, ' ')
        .replace(/ {5,}/g, '    ');
      return { text, source, parameter: { type: 'text', text } };
    }
  }
  // A fallback is plain text: the provider takes text wherever a typed value could go.
  if (binding.fallback !== undefined)
    return {
      text: binding.fallback,
      source: 'fallback',
      parameter: { type: 'text', text: binding.fallback },
    };
  return undefined;
}

/** Every variable's value for this contact, and the ones that have none. */
export function resolveVariables(
  template: Renderable,
  contact: Partial<Contact>,
): { values: Record<string, ResolvedValue>; missing: string[] } {
  const values: Record<string, ResolvedValue> = {};
  const missing: string[] = [];
  for (const use of variableUses(template as TemplateInput)) {
    const binding = template.variables[use.ref];
    if (!binding) {
      if (!use.optional) missing.push(use.ref);
      continue;
    }
    const value = resolve(binding, contact, template);
    if (value) values[use.ref] = value;
    else missing.push(use.ref);
  }
  return { values, missing };
}

function fill(text: string, prefix: string, values: Record<string, ResolvedValue>): string {
  return text.replace(VARIABLE, (whole, name: string) => values[`${prefix}.${name}`]?.text ?? whole);
}

const MEDIA: Record<string, string> = { IMAGE: 'image', VIDEO: 'video', GIF: 'video', DOCUMENT: 'document' };

/**
 * The content dispatch hands to a channel adapter, filled for one contact. Throws TemplateRenderError
 * when a variable has no value and no fallback.
 */
export function renderTemplate(template: Renderable, contact: Partial<Contact>): RenderedContent {
  const { values, missing } = resolveVariables(template, contact);
  if (missing.length) throw new TemplateRenderError(template.name, missing);
  return build(template, values);
}

function build(template: Renderable, values: Record<string, ResolvedValue>): RenderedContent {
  const c = template.content;
  if (c) {
    if (c.type === 'text') return { type: 'text', body: fill(c.text, 'text', values) };
    if (c.type === 'media')
      return {
        type: 'media',
        mediaType: c.media_type,
        link: c.link,
        ...(c.caption ? { caption: fill(c.caption, 'text', values) } : {}),
      };
    return {
      type: 'buttons',
      body: fill(c.text, 'text', values),
      buttons: c.buttons,
      ...(c.header ? { header: fill(c.header, 'header', values) } : {}),
      ...(c.footer ? { footer: fill(c.footer, 'footer', values) } : {}),
    };
  }
  const named = template.parameter_format === 'NAMED';
  const parameter = (ref: string) => {
    const p = { ...values[ref]!.parameter };
    if (named) p.parameter_name = ref.split('.').pop();
    return p;
  };
  const uses = variableUses(template as TemplateInput);
  const components: TemplateComponentParameters[] = [];
  if (template.header?.format === 'TEXT') {
    const refs = uses.filter((u) => u.ref.startsWith('header.')).map((u) => u.ref);
    if (refs.length) components.push({ type: 'header', parameters: refs.map(parameter) });
  } else if (template.header) {
    const media = MEDIA[template.header.format]!;
    components.push({
      type: 'header',
      parameters: [{ type: media, [media]: { link: template.header.link } }],
    });
  }
  const bodyRefs = uses.filter((u) => u.ref.startsWith('body.')).map((u) => u.ref);
  if (bodyRefs.length) components.push({ type: 'body', parameters: bodyRefs.map(parameter) });
  template.buttons.forEach((button, i) => {
    const index = String(i);
    if (button.type === 'URL' && values[`buttons.${i}.1`])
      components.push({
        type: 'button',
        sub_type: 'url',
        index,
        parameters: [{ type: 'text', text: values[`buttons.${i}.1`]!.text }],
      });
    if (button.type === 'COPY_CODE')
      components.push({
        type: 'button',
        sub_type: 'copy_code',
        index,
        parameters: [
          { type: 'coupon_code', coupon_code: values[`buttons.${i}.code`]?.text ?? button.example },
        ],
      });
    if (button.type === 'QUICK_REPLY' && button.payload)
      components.push({
        type: 'button',
        sub_type: 'quick_reply',
        index,
        parameters: [{ type: 'payload', payload: button.payload }],
      });
  });
  return { type: 'template', name: template.name, language: template.language, components };
}

export interface TemplatePreview {
  rendered: RenderedContent | null;
  /** What the person would see. */
  header: string | null;
  body: string;
  footer: string | null;
  buttons: string[];
  values: Record<string, { text: string; source: ResolvedValue['source'] }>;
  /** Variables with no value and no fallback: the send would fail for this contact. */
  missing: string[];
}

export function previewTemplate(template: Renderable, contact: Partial<Contact>): TemplatePreview {
  const { values, missing } = resolveVariables(template, contact);
  const shown = Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, { text: v.text, source: v.source }]),
  );
  const c = template.content;
  if (c)
    return {
      rendered: missing.length ? null : build(template, values),
      header:
        c.type === 'buttons' && c.header
          ? fill(c.header, 'header', values)
          : c.type === 'media'
            ? `[${c.media_type}] ${c.link}`
            : null,
      body: c.type === 'media' ? fill(c.caption ?? '', 'text', values) : fill(c.text, 'text', values),
      footer: c.type === 'buttons' && c.footer ? fill(c.footer, 'footer', values) : null,
      buttons: c.type === 'buttons' ? c.buttons.map((b) => b.title) : [],
      values: shown,
      missing,
    };
  const h = template.header;
  return {
    rendered: missing.length ? null : build(template, values),
    header: h
      ? h.format === 'TEXT'
        ? fill(h.text ?? '', 'header', values)
        : `[${h.format.toLowerCase()}] ${h.link}`
      : null,
    body: fill(template.body ?? '', 'body', values),
    footer: template.footer,
    buttons: template.buttons.map((b, i) =>
      b.type === 'URL'
        ? `${b.text} → ${b.url.replace('{{1}}', values[`buttons.${i}.1`]?.text ?? '{{1}}')}`
        : b.type === 'PHONE_NUMBER'
          ? `${b.text} → ${b.phone_number}`
          : b.type === 'COPY_CODE'
            ? `Copy code ${values[`buttons.${i}.code`]?.text ?? b.example}`
            : b.text,
    ),
    values: shown,
    missing,
  };
}
