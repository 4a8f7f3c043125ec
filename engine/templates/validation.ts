/**
 * Meta's template rules, written once and used twice: by the template registry before it submits,
 * and by the simulator when it answers a create or a send. Facts: /work/shared/whatsapp-cloud-api.md;
 * limits marked [3P] there are constants here so they are easy to change.
 */
import type { TemplateComponentParameters } from '../channels/types.ts';

export const TEMPLATE_LIMITS = {
  nameMax: 512,
  bodyMax: 1024,
  headerTextMax: 60,
  headerVariablesMax: 1,
  footerMax: 60,
  buttonsMax: 10,
  urlButtonsMax: 2,
  phoneButtonsMax: 1,
  copyCodeButtonsMax: 1,
  buttonTextMax: 25,
  urlMax: 2000,
  phoneMax: 20,
  copyCodeMax: 15,
  /** Fixed words a text needs per variable; fewer is "too many variables for the length". */
  wordsPerVariable: 1,
  /** Longest body once parameters are filled (132005 beyond it). */
  renderedBodyMax: 1024,
  templatesPerAccount: 250,
} as const;

export const TEMPLATE_CATEGORIES = ['MARKETING', 'UTILITY', 'AUTHENTICATION'] as const;
export type TemplateCategory = (typeof TEMPLATE_CATEGORIES)[number];
export const MEDIA_FORMATS = ['IMAGE', 'VIDEO', 'GIF', 'DOCUMENT'] as const;
export type HeaderFormat = 'TEXT' | (typeof MEDIA_FORMATS)[number];

export interface NamedExample {
  param_name: string;
  example: string;
}

/** A template as Meta's POST /{waba-id}/message_templates takes it. */
export interface MetaTemplateDefinition {
  name: string;
  language: string;
  category: string;
  parameter_format?: 'POSITIONAL' | 'NAMED';
  components: MetaComponent[];
}

export type MetaComponent =
  | {
      type: 'HEADER';
      format: HeaderFormat;
      text?: string;
      example?: {
        header_text?: string[];
        header_text_named_params?: NamedExample[];
        header_handle?: string[];
      };
    }
  | {
      type: 'BODY';
      text: string;
      example?: { body_text?: string[][]; body_text_named_params?: NamedExample[] };
    }
  | { type: 'FOOTER'; text: string }
  | { type: 'BUTTONS'; buttons: MetaButton[] };

export type MetaButton =
  | { type: 'QUICK_REPLY'; text: string }
  | { type: 'URL'; text: string; url: string; example?: string[] }
  | { type: 'PHONE_NUMBER'; text: string; phone_number: string }
  | { type: 'COPY_CODE'; example: string; text?: string };

export interface TemplateIssue {
  /** JSON pointer inside the definition, e.g. `/components/1/text`. */
  path: string;
  message: string;
  /** Stable kebab-case code, e.g. `too-many-variables`. */
  code: string;
}

const VARIABLE = /\{\{([^{}]*)\}\}/g;
const POSITIONAL = /^[1-9][0-9]*$/;
const NAMED = /^[a-z_][a-z0-9_]*$/;

export interface TextVariables {
  /** Variable names in order of first appearance ('1', '2' or 'first_name'). */
  names: string[];
  issues: TemplateIssue[];
}

/** The variables of one text and what is wrong with how they are written. */
export function textVariables(
  text: string,
  path: string,
  format: 'POSITIONAL' | 'NAMED' | 'ANY' = 'ANY',
): TextVariables {
  const issues: TemplateIssue[] = [];
  const names: string[] = [];
  const matches = [...text.matchAll(VARIABLE)];
  for (const match of matches) {
    const name = match[1]!;
    const positional = POSITIONAL.test(name);
    const named = NAMED.test(name);
    if (!positional && !named) {
      issues.push({
        path,
        code: 'malformed-variable',
        message: `variable {{${name}}} is not {{1}} or {{name}}`,
      });
      continue;
    }
    if (format === 'POSITIONAL' && !positional)
      issues.push({
        path,
        code: 'mixed-variables',
        message: `{{${name}}}: this template uses positional variables`,
      });
    if (format === 'NAMED' && !named)
      issues.push({
        path,
        code: 'mixed-variables',
        message: `{{${name}}}: this template uses named variables`,
      });
    if (!names.includes(name)) names.push(name);
  }
  const stripped = text.replace(VARIABLE, '');
  if (/\{\{|\}\}/.test(stripped))
    issues.push({ path, code: 'malformed-variable', message: 'unbalanced {{ or }} in the text' });
  if (matches.length) {
    const trimmed = text.trim();
    if (trimmed.startsWith('{{'))
      issues.push({ path, code: 'variable-at-start', message: 'a variable may not start the text' });
    if (trimmed.endsWith('}}'))
      issues.push({ path, code: 'variable-at-end', message: 'a variable may not end the text' });
    if (/\}\}\s*\{\{/.test(text))
      issues.push({
        path,
        code: 'adjacent-variables',
        message: 'two variables may not be next to each other',
      });
    const words = stripped.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
    if (words < matches.length * TEMPLATE_LIMITS.wordsPerVariable + 1)
      issues.push({
        path,
        code: 'too-many-variables',
        message: `too many variables (${matches.length}) for the length of the text (${words} words)`,
      });
  }
  const positionalNames = names.filter((n) => POSITIONAL.test(n));
  if (positionalNames.length) {
    const sorted = positionalNames.map(Number).sort((a, b) => a - b);
    if (sorted.some((n, i) => n !== i + 1))
      issues.push({
        path,
        code: 'variables-not-sequential',
        message: `positional variables must be {{1}} to {{${sorted.length}}} without gaps`,
      });
    if (positionalNames.length !== names.length)
      issues.push({
        path,
        code: 'mixed-variables',
        message: 'positional and named variables may not be mixed',
      });
  }
  return { names, issues };
}

const isText = (value: unknown): value is string => typeof value === 'string';

/** Every problem Meta would report for this definition (empty when it would accept it). */
export function validateTemplateDefinition(definition: MetaTemplateDefinition): TemplateIssue[] {
  const issues: TemplateIssue[] = [];
  const add = (path: string, code: string, message: string) => issues.push({ path, code, message });
  const d = definition as unknown as Record<string, unknown>;
  if (!isText(d.name) || !d.name) add('/name', 'required', 'name is required');
  else {
    if (!/^[a-z0-9_]+$/.test(d.name))
      add('/name', 'invalid-name', 'name may contain only lowercase letters, digits and underscores');
    if (d.name.length > TEMPLATE_LIMITS.nameMax)
      add('/name', 'too-long', `name is longer than ${TEMPLATE_LIMITS.nameMax} characters`);
  }
  if (!isText(d.language) || !/^[a-z]{2,3}(_[A-Z]{2,4})?$/.test(d.language))
    add('/language', 'invalid-language', 'language must be a code such as en, en_US or pt_BR');
  if (!TEMPLATE_CATEGORIES.includes(d.category as TemplateCategory))
    add('/category', 'invalid-category', `category must be one of ${TEMPLATE_CATEGORIES.join(', ')}`);
  const format = d.parameter_format ?? 'POSITIONAL';
  if (format !== 'POSITIONAL' && format !== 'NAMED')
    add('/parameter_format', 'invalid-parameter-format', 'parameter_format must be POSITIONAL or NAMED');
  const components = Array.isArray(d.components) ? (d.components as MetaComponent[]) : null;
  if (!components) {
    add('/components', 'required', 'components must be a list');
    return issues;
  }
  const seen = new Map<string, number>();
  components.forEach((component, i) => {
    const path = `/components/${i}`;
    const type = (component as { type?: unknown }).type;
    if (!isText(type) || !['HEADER', 'BODY', 'FOOTER', 'BUTTONS'].includes(type)) {
      add(`${path}/type`, 'invalid-component', 'component type must be HEADER, BODY, FOOTER or BUTTONS');
      return;
    }
    if (seen.has(type)) add(`${path}/type`, 'duplicate-component', `only one ${type} component is allowed`);
    seen.set(type, i);
    const varFormat = format === 'NAMED' ? 'NAMED' : 'POSITIONAL';
    if (component.type === 'BODY') checkBody(component, path, varFormat, issues);
    else if (component.type === 'HEADER') checkHeader(component, path, varFormat, issues);
    else if (component.type === 'FOOTER') {
      if (!isText(component.text) || !component.text.trim())
        add(`${path}/text`, 'required', 'footer text is required');
      else {
        if (component.text.length > TEMPLATE_LIMITS.footerMax)
          add(`${path}/text`, 'too-long', `footer is longer than ${TEMPLATE_LIMITS.footerMax} characters`);
        if (VARIABLE.test(component.text) || component.text.includes('{{'))
          add(`${path}/text`, 'variables-not-allowed', 'a footer may not contain variables');
        VARIABLE.lastIndex = 0;
      }
    } else checkButtons(component, path, issues);
  });
  if (!seen.has('BODY')) add('/components', 'body-required', 'a BODY component is required');
  return issues;
}

function checkBody(
  component: Extract<MetaComponent, { type: 'BODY' }>,
  path: string,
  format: 'POSITIONAL' | 'NAMED',
  issues: TemplateIssue[],
): void {
  if (!isText(component.text) || !component.text.trim()) {
    issues.push({ path: `${path}/text`, code: 'required', message: 'body text is required' });
    return;
  }
  if (component.text.length > TEMPLATE_LIMITS.bodyMax)
    issues.push({
      path: `${path}/text`,
      code: 'too-long',
      message: `body is longer than ${TEMPLATE_LIMITS.bodyMax} characters`,
    });
  const vars = textVariables(component.text, `${path}/text`, format);
  issues.push(...vars.issues);
  if (!vars.names.length) return;
  if (format === 'NAMED') {
    const examples = component.example?.body_text_named_params ?? [];
    checkNamedExamples(vars.names, examples, `${path}/example/body_text_named_params`, issues);
  } else {
    const examples = component.example?.body_text?.[0];
    if (!Array.isArray(examples) || examples.length !== vars.names.length || !examples.every(isNonEmpty))
      issues.push({
        path: `${path}/example/body_text`,
        code: 'examples-mismatch',
        message: `give one example for each of the ${vars.names.length} body variables`,
      });
  }
}

function checkHeader(
  component: Extract<MetaComponent, { type: 'HEADER' }>,
  path: string,
  format: 'POSITIONAL' | 'NAMED',
  issues: TemplateIssue[],
): void {
  if (component.format === 'TEXT') {
    if (!isText(component.text) || !component.text.trim()) {
      issues.push({ path: `${path}/text`, code: 'required', message: 'header text is required' });
      return;
    }
    if (component.text.length > TEMPLATE_LIMITS.headerTextMax)
      issues.push({
        path: `${path}/text`,
        code: 'too-long',
        message: `header is longer than ${TEMPLATE_LIMITS.headerTextMax} characters`,
      });
    if (/[\n\r]/.test(component.text))
      issues.push({
        path: `${path}/text`,
        code: 'newline-not-allowed',
        message: 'a header may not contain new lines',
      });
    const vars = textVariables(component.text, `${path}/text`, format);
    // A header is short: only the forms and count matter, not the density or position rules.
    issues.push(
      ...vars.issues.filter((i) =>
        ['malformed-variable', 'mixed-variables', 'variables-not-sequential'].includes(i.code),
      ),
    );
    if (vars.names.length > TEMPLATE_LIMITS.headerVariablesMax)
      issues.push({
        path: `${path}/text`,
        code: 'too-many-variables',
        message: `a text header may have at most ${TEMPLATE_LIMITS.headerVariablesMax} variable`,
      });
    else if (vars.names.length) {
      if (format === 'NAMED')
        checkNamedExamples(
          vars.names,
          component.example?.header_text_named_params ?? [],
          `${path}/example/header_text_named_params`,
          issues,
        );
      else if (!component.example?.header_text?.length || !component.example.header_text.every(isNonEmpty))
        issues.push({
          path: `${path}/example/header_text`,
          code: 'examples-mismatch',
          message: 'give an example for the header variable',
        });
    }
  } else if ((MEDIA_FORMATS as readonly string[]).includes(component.format)) {
    if (component.text !== undefined)
      issues.push({ path: `${path}/text`, code: 'text-not-allowed', message: 'a media header has no text' });
    const handle = component.example?.header_handle;
    if (!Array.isArray(handle) || handle.length !== 1 || !isNonEmpty(handle[0]))
      issues.push({
        path: `${path}/example/header_handle`,
        code: 'examples-mismatch',
        message: 'a media header needs one example (a media handle or link)',
      });
  } else
    issues.push({
      path: `${path}/format`,
      code: 'invalid-header-format',
      message: `header format must be TEXT or one of ${MEDIA_FORMATS.join(', ')}`,
    });
}

function checkNamedExamples(
  names: string[],
  examples: NamedExample[],
  path: string,
  issues: TemplateIssue[],
) {
  const given = new Map((Array.isArray(examples) ? examples : []).map((e) => [e?.param_name, e?.example]));
  const missing = names.filter((n) => !isNonEmpty(given.get(n)));
  const extra = [...given.keys()].filter((n) => !names.includes(n as string));
  if (missing.length || extra.length)
    issues.push({
      path,
      code: 'examples-mismatch',
      message: [
        missing.length ? `missing examples for ${missing.join(', ')}` : '',
        extra.length ? `examples for unknown variables ${extra.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; '),
    });
}

const isNonEmpty = (value: unknown) => typeof value === 'string' && value.trim().length > 0;

function checkButtons(
  component: Extract<MetaComponent, { type: 'BUTTONS' }>,
  path: string,
  issues: TemplateIssue[],
) {
  const add = (p: string, code: string, message: string) => issues.push({ path: p, code, message });
  const buttons = Array.isArray(component.buttons) ? component.buttons : [];
  if (!buttons.length) add(`${path}/buttons`, 'required', 'a BUTTONS component needs at least one button');
  if (buttons.length > TEMPLATE_LIMITS.buttonsMax)
    add(`${path}/buttons`, 'too-many-buttons', `at most ${TEMPLATE_LIMITS.buttonsMax} buttons`);
  const count = (type: string) => buttons.filter((b) => b?.type === type).length;
  if (count('URL') > TEMPLATE_LIMITS.urlButtonsMax)
    add(`${path}/buttons`, 'too-many-buttons', `at most ${TEMPLATE_LIMITS.urlButtonsMax} URL buttons`);
  if (count('PHONE_NUMBER') > TEMPLATE_LIMITS.phoneButtonsMax)
    add(
      `${path}/buttons`,
      'too-many-buttons',
      `at most ${TEMPLATE_LIMITS.phoneButtonsMax} phone number button`,
    );
  if (count('COPY_CODE') > TEMPLATE_LIMITS.copyCodeButtonsMax)
    add(
      `${path}/buttons`,
      'too-many-buttons',
      `at most ${TEMPLATE_LIMITS.copyCodeButtonsMax} copy code button`,
    );
  // Quick replies must form one group, before or after the other buttons, never interleaved.
  const kinds = buttons.map((b) => (b?.type === 'QUICK_REPLY' ? 'q' : 'o')).join('');
  if (/q+o+q|o+q+o/.test(kinds))
    add(
      `${path}/buttons`,
      'buttons-not-grouped',
      'quick reply buttons must be grouped apart from the others',
    );
  buttons.forEach((button, i) => {
    const p = `${path}/buttons/${i}`;
    const text = (button as { text?: unknown }).text;
    if (button?.type !== 'COPY_CODE') {
      if (!isNonEmpty(text)) add(`${p}/text`, 'required', 'button text is required');
      else if ((text as string).length > TEMPLATE_LIMITS.buttonTextMax)
        add(
          `${p}/text`,
          'too-long',
          `button text is longer than ${TEMPLATE_LIMITS.buttonTextMax} characters`,
        );
      else if ((text as string).includes('{{'))
        add(`${p}/text`, 'variables-not-allowed', 'button text may not contain variables');
    }
    switch (button?.type) {
      case 'QUICK_REPLY':
        break;
      case 'URL': {
        if (!isText(button.url) || !/^https?:\/\/[^\s]+$/.test(button.url)) {
          add(`${p}/url`, 'invalid-url', 'url must be an http(s) URL');
          break;
        }
        if (button.url.length > TEMPLATE_LIMITS.urlMax) add(`${p}/url`, 'too-long', 'url is too long');
        const vars = [...button.url.matchAll(VARIABLE)];
        if (vars.length > 1) add(`${p}/url`, 'too-many-variables', 'a URL may have at most one variable');
        else if (vars.length === 1) {
          if (!button.url.endsWith('{{1}}'))
            add(`${p}/url`, 'variable-position', 'a URL variable must be {{1}} at the end of the URL');
          if (!Array.isArray(button.example) || button.example.length !== 1 || !isNonEmpty(button.example[0]))
            add(`${p}/example`, 'examples-mismatch', 'give one example for the URL variable');
        }
        break;
      }
      case 'PHONE_NUMBER':
        if (!isText(button.phone_number) || !/^\+?[0-9]{6,19}$/.test(button.phone_number))
          add(
            `${p}/phone_number`,
            'invalid-phone',
            'phone_number must be a phone number in international form',
          );
        else if (button.phone_number.length > TEMPLATE_LIMITS.phoneMax)
          add(`${p}/phone_number`, 'too-long', 'phone_number is too long');
        break;
      case 'COPY_CODE':
        if (!isNonEmpty(button.example))
          add(`${p}/example`, 'required', 'a copy code button needs an example code');
        else if (button.example.length > TEMPLATE_LIMITS.copyCodeMax)
          add(`${p}/example`, 'too-long', `a code is at most ${TEMPLATE_LIMITS.copyCodeMax} characters`);
        break;
      default:
        add(`${p}/type`, 'invalid-button', 'button type must be QUICK_REPLY, URL, PHONE_NUMBER or COPY_CODE');
    }
  });
}

/** What a send must supply for a template: parameter names per component. */
export interface TemplateShape {
  headerFormat?: HeaderFormat;
  headerVariables: string[];
  bodyVariables: string[];
  /** Buttons by index that take a parameter, and the sub_type they take it as. */
  buttonParameters: { index: number; subType: 'url' | 'copy_code' }[];
  bodyText: string;
}

/** The order parameters are sent in: {{1}}, {{2}}, ... by number; named ones as they first appear. */
export function parameterOrder(names: string[]): string[] {
  return names.every((n) => POSITIONAL.test(n)) ? [...names].sort((a, b) => Number(a) - Number(b)) : names;
}

const shapes = new WeakMap<MetaTemplateDefinition, TemplateShape>();

export function templateShape(definition: MetaTemplateDefinition): TemplateShape {
  let shape = shapes.get(definition);
  if (!shape) {
    shape = computeShape(definition);
    shapes.set(definition, shape);
  }
  return shape;
}

function computeShape(definition: MetaTemplateDefinition): TemplateShape {
  const header = definition.components.find((c) => c.type === 'HEADER') as
    | Extract<MetaComponent, { type: 'HEADER' }>
    | undefined;
  const body = definition.components.find((c) => c.type === 'BODY') as
    | Extract<MetaComponent, { type: 'BODY' }>
    | undefined;
  const buttons =
    (
      definition.components.find((c) => c.type === 'BUTTONS') as
        | Extract<MetaComponent, { type: 'BUTTONS' }>
        | undefined
    )?.buttons ?? [];
  return {
    headerFormat: header?.format,
    headerVariables:
      header?.format === 'TEXT' ? parameterOrder(textVariables(header.text ?? '', '').names) : [],
    bodyVariables: parameterOrder(textVariables(body?.text ?? '', '').names),
    buttonParameters: buttons.flatMap((b, index): TemplateShape['buttonParameters'] =>
      b.type === 'URL' && b.url.includes('{{')
        ? [{ index, subType: 'url' as const }]
        : b.type === 'COPY_CODE'
          ? [{ index, subType: 'copy_code' as const }]
          : [],
    ),
    bodyText: body?.text ?? '',
  };
}

export interface SendCheckError {
  code: 132000 | 132005 | 132012;
  details: string;
}

const BODY_PARAMETER_TYPES = ['text', 'currency', 'date_time'];

function parameterText(parameter: Record<string, unknown>): string | undefined {
  if (parameter.type === 'text') return typeof parameter.text === 'string' ? parameter.text : undefined;
  if (parameter.type === 'currency')
    return (parameter.currency as { fallback_value?: string } | undefined)?.fallback_value;
  if (parameter.type === 'date_time')
    return (parameter.date_time as { fallback_value?: string } | undefined)?.fallback_value;
  return undefined;
}

/**
 * Checks the parameters of a template send against the template, as the Cloud API does:
 * counts (132000), formats (132012), the filled body's length (132005).
 */
export function checkSendParameters(
  definition: MetaTemplateDefinition,
  components: TemplateComponentParameters[] | undefined,
): SendCheckError | null {
  const shape = templateShape(definition);
  const named = definition.parameter_format === 'NAMED';
  const list = Array.isArray(components) ? components : [];
  const of = (type: string) => list.filter((c) => c?.type === type);
  const header = of('header')[0];
  const body = of('body')[0];
  // Header
  if (shape.headerFormat && shape.headerFormat !== 'TEXT') {
    const parameter = header?.parameters?.[0];
    if (!parameter || header.parameters.length !== 1)
      return { code: 132000, details: 'the media header needs exactly one parameter' };
    const media = shape.headerFormat.toLowerCase() === 'gif' ? 'video' : shape.headerFormat.toLowerCase();
    const value = parameter[media] as { link?: unknown; id?: unknown } | undefined;
    if (
      parameter.type !== media ||
      !value ||
      (typeof value.link !== 'string' && typeof value.id !== 'string')
    )
      return { code: 132012, details: `the header parameter must be ${media} with a link or id` };
  } else {
    const count = header?.parameters?.length ?? 0;
    if (count !== shape.headerVariables.length)
      return {
        code: 132000,
        details: `header expects ${shape.headerVariables.length} parameters, got ${count}`,
      };
    for (const parameter of header?.parameters ?? [])
      if (parameter.type !== 'text' || !isNonEmpty(parameter.text))
        return { code: 132012, details: 'header parameters must be non-empty text' };
  }
  // Body
  const bodyParameters = body?.parameters ?? [];
  if (bodyParameters.length !== shape.bodyVariables.length)
    return {
      code: 132000,
      details: `body expects ${shape.bodyVariables.length} parameters, got ${bodyParameters.length}`,
    };
  const values = new Map<string, string>();
  for (const [i, parameter] of bodyParameters.entries()) {
    if (!BODY_PARAMETER_TYPES.includes(parameter?.type as string))
      return { code: 132012, details: `body parameter ${i} has type ${String(parameter?.type)}` };
    const text = parameterText(parameter);
    if (!isNonEmpty(text)) return { code: 132012, details: `body parameter ${i} has no value` };
    if (/[\n\t]| {5,}/.test(text!))
      return { code: 132012, details: `body parameter ${i} has a new line, a tab or more than 4 spaces` };
    const name = named ? (parameter.parameter_name as string | undefined) : shape.bodyVariables[i];
    if (!name || !shape.bodyVariables.includes(name))
      return { code: 132000, details: `body parameter ${i} names no variable of the template` };
    values.set(name, text!);
  }
  const rendered = shape.bodyText.replace(VARIABLE, (_m, name: string) => values.get(name) ?? '');
  if (rendered.length > TEMPLATE_LIMITS.renderedBodyMax)
    return { code: 132005, details: `the filled body is ${rendered.length} characters` };
  // Buttons
  const buttons = of('button');
  for (const expected of shape.buttonParameters) {
    const given = buttons.find((b) => Number(b.index) === expected.index);
    if (!given?.parameters?.length)
      return { code: 132000, details: `button ${expected.index} needs a parameter` };
    if (given.sub_type !== expected.subType)
      return { code: 132012, details: `button ${expected.index} is a ${expected.subType} button` };
  }
  for (const given of buttons) {
    const index = Number(given.index);
    if (given.sub_type === 'quick_reply') continue;
    if (!shape.buttonParameters.some((b) => b.index === index))
      return { code: 132000, details: `button ${given.index} takes no parameter` };
  }
  return null;
}
