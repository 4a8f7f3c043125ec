/**
 * From a Chorus template to Meta's definition, and every problem with it: Meta's own rules (the shared
 * validation module, the same the simulator runs) plus Chorus's variable bindings, with paths into
 * the user's input.
 */
import { DateTime } from 'luxon';
import type { AttributeType } from '../contacts/attributes.ts';
import type { FieldIssue } from '../validation.ts';
import type { TemplateInput, VariableBinding } from './types.ts';
import {
  type MetaButton,
  type MetaComponent,
  type MetaTemplateDefinition,
  parameterOrder,
  TEMPLATE_CATEGORIES,
  type TemplateCategory,
  textVariables,
  validateTemplateDefinition,
} from './validation.ts';

/** Contact fields a variable may name besides custom attributes. */
export const CONTACT_FIELDS: Record<string, AttributeType> = {
  phone: 'string',
  external_id: 'string',
  country: 'string',
  language: 'string',
  timezone: 'string',
};

/** A variable a template uses: its reference (the key of `variables`) and where it appears. */
export interface VariableUse {
  ref: string;
  /** Input path of the text it appears in. */
  path: string;
  /** Only text may go into headers and buttons. */
  textOnly: boolean;
  /** Copy-code buttons default to their example; nothing else is optional. */
  optional?: boolean;
}

export function variableUses(input: TemplateInput): VariableUse[] {
  const uses: VariableUse[] = [];
  const add = (prefix: string, text: string | undefined, path: string, textOnly: boolean) => {
    if (!text) return;
    for (const name of parameterOrder(textVariables(text, path).names))
      uses.push({ ref: `${prefix}.${name}`, path, textOnly });
  };
  if (input.content) {
    const c = input.content;
    if (c.type === 'text') add('text', c.text, '/content/text', false);
    if (c.type === 'media') add('text', c.caption, '/content/caption', false);
    if (c.type === 'buttons') {
      add('text', c.text, '/content/text', false);
      add('header', c.header, '/content/header', true);
      add('footer', c.footer, '/content/footer', true);
    }
    return uses;
  }
  if (input.header?.format === 'TEXT') add('header', input.header.text, '/header/text', true);
  add('body', input.body, '/body', false);
  (input.buttons ?? []).forEach((button, i) => {
    if (button.type === 'URL' && button.url?.includes('{{'))
      uses.push({ ref: `buttons.${i}.1`, path: `/buttons/${i}/url`, textOnly: true });
    if (button.type === 'COPY_CODE')
      uses.push({ ref: `buttons.${i}.code`, path: `/buttons/${i}/example`, textOnly: true, optional: true });
  });
  return uses;
}

const exampleOf = (binding: VariableBinding | undefined) =>
  binding?.example ?? binding?.fallback ?? binding?.value;

/** Meta's definition of a WhatsApp template, and where each of its paths comes from in the input. */
export function toMetaDefinition(input: TemplateInput): {
  definition: MetaTemplateDefinition;
  pathOf: (metaPath: string) => string;
} {
  const vars = input.variables ?? {};
  const components: MetaComponent[] = [];
  const origins: string[] = [];
  const named = input.parameter_format === 'NAMED';
  const examples = (prefix: string, text: string) =>
    parameterOrder(textVariables(text, '').names).map((name) => ({
      name,
      example: exampleOf(vars[`${prefix}.${name}`]) ?? '',
    }));
  if (input.header) {
    const h = input.header;
    if (h.format === 'TEXT') {
      const ex = examples('header', h.text ?? '');
      components.push({
        type: 'HEADER',
        format: 'TEXT',
        text: h.text,
        ...(ex.length
          ? {
              example: named
                ? { header_text_named_params: ex.map((e) => ({ param_name: e.name, example: e.example })) }
                : { header_text: ex.map((e) => e.example) },
            }
          : {}),
      });
    } else
      components.push({
        type: 'HEADER',
        format: h.format,
        example: { header_handle: h.link ? [h.link] : [] },
      });
    origins.push('header');
  }
  const ex = examples('body', input.body ?? '');
  components.push({
    type: 'BODY',
    text: input.body ?? '',
    ...(ex.length
      ? {
          example: named
            ? { body_text_named_params: ex.map((e) => ({ param_name: e.name, example: e.example })) }
            : { body_text: [ex.map((e) => e.example)] },
        }
      : {}),
  });
  origins.push('body');
  if (input.footer) {
    components.push({ type: 'FOOTER', text: input.footer });
    origins.push('footer');
  }
  if (input.buttons?.length) {
    const buttons: MetaButton[] = input.buttons.map((b, i) => {
      if (b.type === 'QUICK_REPLY') return { type: 'QUICK_REPLY', text: b.text };
      if (b.type === 'URL') {
        const example = exampleOf(vars[`buttons.${i}.1`]);
        return {
          type: 'URL',
          text: b.text,
          url: b.url,
          ...(b.url?.includes('{{') ? { example: [example ?? ''] } : {}),
        };
      }
      if (b.type === 'PHONE_NUMBER')
        return { type: 'PHONE_NUMBER', text: b.text, phone_number: b.phone_number };
      return { type: 'COPY_CODE', example: (b as { example: string }).example };
    });
    components.push({ type: 'BUTTONS', buttons });
    origins.push('buttons');
  }
  const definition: MetaTemplateDefinition = {
    name: input.name,
    language: input.language,
    category: input.category,
    ...(named ? { parameter_format: 'NAMED' } : {}),
    components,
  };
  const pathOf = (metaPath: string): string => {
    const match = /^\/components\/(\d+)(\/.*)?$/.exec(metaPath);
    if (!match) return metaPath === '/components' ? '/body' : metaPath;
    const origin = origins[Number(match[1])];
    const rest = match[2] ?? '';
    if (rest.startsWith('/example')) {
      if (origin === 'header' && input.header?.format !== 'TEXT') return '/header/link';
      if (origin === 'buttons') return `/buttons${rest.replace(/^\/example.*/, '')}`;
      return '/variables';
    }
    if (origin === 'body') return '/body';
    if (origin === 'footer') return '/footer';
    if (origin === 'header') return `/header${rest}`;
    if (origin === 'buttons') {
      const button = /^\/buttons\/(\d+)\/example$/.exec(rest);
      if (button && input.buttons?.[Number(button[1])]?.type === 'URL') return '/variables';
      return rest || '/buttons';
    }
    return metaPath;
  };
  return { definition, pathOf };
}

/**
 * Every problem with a template input, with paths into it (empty when valid). `attributes` is the
 * workspace's attribute schema: a variable may name only a known attribute or contact field.
 */
export function validateTemplateInput(
  input: TemplateInput,
  attributes: Map<string, AttributeType>,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const add = (path: string, code: string, message: string) => issues.push({ path, code, message });
  if (input.content) {
    // Free-form content: Meta's naming and category rules still hold; the shape is checked here.
    const { definition } = toMetaDefinition({
      ...input,
      content: undefined,
      body: 'Hello there',
      header: null,
      footer: null,
      buttons: [],
    });
    for (const issue of validateTemplateDefinition(definition))
      if (['/name', '/language', '/category'].includes(issue.path)) issues.push(issue);
    if (input.body || input.header || input.footer || input.buttons?.length)
      add(
        '/content',
        'content-and-template',
        'give either content or a WhatsApp template (body, header, footer, buttons), not both',
      );
    checkContent(input, add);
    for (const use of variableUses(input))
      issues.push(
        ...textVariables(contentText(input, use.path), use.path).issues.filter((i) =>
          ['malformed-variable'].includes(i.code),
        ),
      );
  } else {
    if (
      !(TEMPLATE_CATEGORIES as readonly string[]).includes(input.category as TemplateCategory) &&
      !input.category
    )
      add('/category', 'required', 'category is required');
    const { definition, pathOf } = toMetaDefinition(input);
    for (const issue of validateTemplateDefinition(definition)) {
      // Missing examples are reported on the bindings below, where the user can fix them.
      if (issue.code === 'examples-mismatch' && pathOf(issue.path) === '/variables') continue;
      issues.push({ ...issue, path: pathOf(issue.path) });
    }
    if (
      input.header &&
      input.header.format !== 'TEXT' &&
      input.header.link &&
      !/^https:\/\/\S+$/.test(input.header.link)
    )
      add('/header/link', 'invalid-link', 'a media header link must be an https URL');
  }
  checkBindings(input, attributes, add);
  return dedupe(issues);
}

function contentText(input: TemplateInput, path: string): string {
  const c = input.content as Record<string, unknown>;
  return String(c[path.replace('/content/', '')] ?? '');
}

function checkContent(input: TemplateInput, add: (path: string, code: string, message: string) => void) {
  const c = input.content!;
  if (c.type === 'text') {
    if (!c.text?.trim()) add('/content/text', 'required', 'text is required');
    else if (c.text.length > 4096) add('/content/text', 'too-long', 'text is longer than 4,096 characters');
  } else if (c.type === 'media') {
    if (!/^https:\/\/\S+$/.test(c.link ?? ''))
      add('/content/link', 'invalid-link', 'link must be an https URL');
    if (c.caption && c.caption.length > 1024)
      add('/content/caption', 'too-long', 'caption is longer than 1,024 characters');
  } else if (c.type === 'buttons') {
    if (!c.text?.trim()) add('/content/text', 'required', 'text is required');
    else if (c.text.length > 1024) add('/content/text', 'too-long', 'text is longer than 1,024 characters');
    if (!c.buttons?.length || c.buttons.length > 3)
      add('/content/buttons', 'button-count', 'give 1 to 3 reply buttons');
    const ids = new Set<string>();
    c.buttons?.forEach((b, i) => {
      if (!b.title?.trim() || b.title.length > 20)
        add(`/content/buttons/${i}/title`, 'invalid-title', 'a button title has 1 to 20 characters');
      if (!b.id?.trim() || b.id.length > 256)
        add(`/content/buttons/${i}/id`, 'invalid-id', 'a button id has 1 to 256 characters');
      if (ids.has(b.id)) add(`/content/buttons/${i}/id`, 'duplicate-id', 'button ids must differ');
      ids.add(b.id);
    });
    if (c.header && c.header.length > 60)
      add('/content/header', 'too-long', 'header is longer than 60 characters');
    if (c.footer && c.footer.length > 60)
      add('/content/footer', 'too-long', 'footer is longer than 60 characters');
  }
}

function checkBindings(
  input: TemplateInput,
  attributes: Map<string, AttributeType>,
  add: (path: string, code: string, message: string) => void,
) {
  const bindings = input.variables ?? {};
  const uses = variableUses(input);
  const used = new Set(uses.map((u) => u.ref));
  for (const use of uses)
    if (!bindings[use.ref] && !use.optional)
      add(
        `/variables/${use.ref}`,
        'unmapped-variable',
        `${use.ref} (in ${use.path}) has no binding: map it to a contact attribute or a value`,
      );
  for (const [ref, binding] of Object.entries(bindings)) {
    const path = `/variables/${ref}`;
    if (!used.has(ref)) {
      add(path, 'unused-variable', `the template has no variable ${ref}`);
      continue;
    }
    const use = uses.find((u) => u.ref === ref)!;
    const hasAttribute = typeof binding.attribute === 'string' && binding.attribute.length > 0;
    const hasValue = typeof binding.value === 'string';
    if (hasAttribute === hasValue) {
      add(path, 'binding-source', 'give exactly one of attribute or value');
      continue;
    }
    const type = binding.type ?? 'text';
    if (use.textOnly && type !== 'text')
      add(`${path}/type`, 'text-only', `${ref} appears where only text is allowed`);
    let attributeType: AttributeType | undefined;
    if (hasAttribute) {
      attributeType = CONTACT_FIELDS[binding.attribute!] ?? attributes.get(binding.attribute!);
      if (!attributeType) {
        add(
          `${path}/attribute`,
          'unknown-attribute',
          `unknown attribute ${binding.attribute}: define it in the workspace's attribute schema first`,
        );
        continue;
      }
    }
    if (type === 'currency') {
      if (!/^[A-Z]{3}$/.test(binding.currency_code ?? ''))
        add(
          `${path}/currency_code`,
          'currency-code',
          'a currency variable needs an ISO 4217 currency_code, e.g. INR',
        );
      if (attributeType && attributeType !== 'number')
        add(
          `${path}/attribute`,
          'type-mismatch',
          `a currency variable needs a number attribute; ${binding.attribute} is ${attributeType}`,
        );
      if (hasValue && !Number.isFinite(Number(binding.value)))
        add(`${path}/value`, 'type-mismatch', 'a currency value must be a number');
    }
    if (type === 'date_time') {
      if (attributeType && attributeType !== 'date' && attributeType !== 'datetime')
        add(
          `${path}/attribute`,
          'type-mismatch',
          `a date_time variable needs a date or datetime attribute; ${binding.attribute} is ${attributeType}`,
        );
      if (hasValue && !DateTime.fromISO(binding.value!).isValid)
        add(`${path}/value`, 'type-mismatch', 'a date_time value must be an ISO date or datetime');
    }
    if (type !== 'text' && binding.currency_code && type !== 'currency')
      add(`${path}/currency_code`, 'not-currency', 'currency_code applies to currency variables only');
    for (const field of ['fallback', 'example', 'value'] as const) {
      const v = binding[field];
      if (v !== undefined && (!v.trim() || /[\n\t]| {5,}/.test(v)))
        add(
          `${path}/${field}`,
          'invalid-text',
          `${field} may not be empty or hold new lines, tabs or more than 4 spaces`,
        );
    }
    if (!input.content && exampleOf(binding) === undefined)
      add(`${path}/example`, 'example-required', `Meta's review needs an example for ${ref} (or a fallback)`);
  }
}

function dedupe(issues: FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
