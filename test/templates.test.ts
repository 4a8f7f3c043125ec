// The template registry: local validation with Meta's rules (shared with the simulator), bindings to
// contact attributes, nothing stored on error, review through the simulator, preview and rendering.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhatsAppAdapter } from '../engine/channels/whatsapp/adapter.ts';
import { parseWhatsAppWebhook } from '../engine/channels/whatsapp/index.ts';
import { defineAttributes } from '../engine/contacts/attributes.ts';
import { upsertContacts } from '../engine/contacts/index.ts';
import {
  applyTemplateStatusEvent,
  checkSendParameters,
  getTemplate,
  renderTemplate,
  type TemplateInput,
  TemplateRenderError,
  toMetaDefinition,
} from '../engine/templates/index.ts';
import { type RunningSimulator, startSimulator } from '../simulator/server.ts';
import { openTestApi, postgresTargets, type TestApi } from './helpers/runtime.ts';

const order: TemplateInput = {
  name: 'order_shipped',
  language: 'en_US',
  category: 'UTILITY',
  header: { format: 'IMAGE', link: 'https://cdn.example.com/box.png' },
  body: 'Hi {{1}}, your order of {{2}} ships on {{3}}. Track it below.',
  footer: 'Reply STOP to opt out',
  buttons: [
    { type: 'QUICK_REPLY', text: 'Thanks', payload: 'THANKS' },
    { type: 'URL', text: 'Track', url: 'https://shop.example.com/track/{{1}}' },
    { type: 'PHONE_NUMBER', text: 'Call us', phone_number: '+919800000000' },
    { type: 'COPY_CODE', example: 'SAVE10' },
  ],
  variables: {
    'body.1': { attribute: 'first_name', fallback: 'there', example: 'Asha' },
    'body.2': {
      attribute: 'order_total',
      type: 'currency',
      currency_code: 'INR',
      example: '₹1,250.00',
      fallback: 'your items',
    },
    'body.3': { attribute: 'ship_date', type: 'date_time', example: 'March 3', fallback: 'soon' },
    'buttons.1.1': { attribute: 'external_id', example: 'A-100' },
  },
};

describe.each(postgresTargets)('templates on $name', ({ url }) => {
  let api: TestApi;
  let sim: RunningSimulator;
  let senderId: string;
  let hookServer: ReturnType<typeof createServer>;
  const applied: string[] = [];

  beforeAll(async () => {
    api = await openTestApi({ postgresUrl: url });
    await defineAttributes(api.runtime.pg, api.workspace.id, [
      { name: 'first_name', type: 'string' },
      { name: 'order_total', type: 'number' },
      { name: 'ship_date', type: 'date' },
      { name: 'plan', type: 'string' },
    ]);
    // The webhook path in miniature: verify, parse, apply review events to the registry.
    hookServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const raw = Buffer.concat(chunks);
        for (const event of parseWhatsAppWebhook(raw))
          if (event.kind === 'template_status') {
            await applyTemplateStatusEvent(api.runtime, event);
            applied.push(`${event.templateName}:${event.event}`);
          }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
    sim = await startSimulator({
      seed: 'registry',
      appSecret: 'app-secret',
      accessToken: 'tok',
      webhookUrl: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/`,
      reviewDelayMs: 5 * 60_000,
      clock: { manual: true, start: Date.parse('2026-03-02T10:00:00Z') },
      webhooks: { lateRate: 0, duplicateRate: 0, outOfOrderRate: 0 },
      recipientRates: { notOnWhatsApp: 0, stoppedMarketing: 0 },
    });
    const sender = await api.app.inject({
      method: 'POST',
      url: '/v1/senders',
      headers: api.auth,
      payload: {
        name: 'sim',
        phone_number_id: '5000',
        waba_id: '100000000000001',
        portfolio_id: 'pf',
        base_url: sim.url,
        access_token: 'tok',
        app_secret: 'app-secret',
      },
    });
    senderId = sender.json().id;
  });
  afterAll(async () => {
    await sim?.close();
    await new Promise<void>((r) => (hookServer ? hookServer.close(() => r()) : r()));
    await api?.close();
  });

  const create = (body: unknown) =>
    api.app.inject({ method: 'POST', url: '/v1/templates', headers: api.auth, payload: body as object });
  const count = async () =>
    (await api.app.inject({ url: '/v1/templates', headers: api.auth })).json().data.length;

  it('creates a template with media header, typed variables and every button kind', async () => {
    const response = await create({ ...order, sender_id: senderId });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      name: 'order_shipped',
      status: 'DRAFT',
      sender_id: senderId,
      provider_template_id: null,
    });
  });

  const bad: [string, Partial<TemplateInput>, string][] = [
    ['a name with capitals', { name: 'Order Shipped' }, '/body/name'],
    ['a name over 512 characters', { name: 'a'.repeat(513) }, '/body/name'],
    [
      'a body over 1,024 characters',
      {
        body: `Hello {{1}} ${'x'.repeat(1030)} thanks`,
        variables: { 'body.1': { attribute: 'first_name', example: 'A' } },
        buttons: [],
      },
      '/body/body',
    ],
    [
      'a variable at the start',
      {
        body: '{{1}}, your order has shipped today',
        variables: { 'body.1': { attribute: 'first_name', example: 'A' } },
        buttons: [],
      },
      '/body/body',
    ],
    [
      'a variable at the end',
      {
        body: 'Your order has shipped, {{1}}',
        variables: { 'body.1': { attribute: 'first_name', example: 'A' } },
        buttons: [],
      },
      '/body/body',
    ],
    [
      'adjacent variables',
      {
        body: 'Hi {{1}} {{2}} your order shipped',
        variables: {
          'body.1': { attribute: 'first_name', example: 'A' },
          'body.2': { attribute: 'plan', example: 'B' },
        },
        buttons: [],
      },
      '/body/body',
    ],
    [
      'variables with a gap',
      {
        body: 'Hi {{1}}, order {{3}} shipped today',
        variables: {
          'body.1': { attribute: 'first_name', example: 'A' },
          'body.3': { attribute: 'plan', example: 'B' },
        },
        buttons: [],
      },
      '/body/body',
    ],
    [
      'too many variables for the length',
      {
        body: 'Hi {{1}}, {{2}}, {{3}}!',
        variables: {
          'body.1': { attribute: 'first_name', example: 'A' },
          'body.2': { attribute: 'plan', example: 'B' },
          'body.3': { attribute: 'plan', example: 'C' },
        },
        buttons: [],
      },
      '/body/body',
    ],
    [
      'two variables in a text header',
      {
        header: { format: 'TEXT', text: 'For {{1}} and {{2}}' },
        variables: {
          ...order.variables,
          'header.1': { attribute: 'plan', example: 'x' },
          'header.2': { attribute: 'plan', example: 'y' },
        },
      },
      '/body/header/text',
    ],
    [
      'a header over 60 characters',
      { header: { format: 'TEXT', text: 'x'.repeat(61) } },
      '/body/header/text',
    ],
    ['a variable in the footer', { footer: 'Bye {{1}}' }, '/body/footer'],
    [
      'eleven buttons',
      {
        buttons: Array.from({ length: 11 }, (_, i) => ({ type: 'QUICK_REPLY' as const, text: `b${i}` })),
        variables: {
          'body.1': order.variables!['body.1']!,
          'body.2': order.variables!['body.2']!,
          'body.3': order.variables!['body.3']!,
        },
      },
      '/body/buttons',
    ],
    [
      'three URL buttons',
      {
        buttons: [1, 2, 3].map((i) => ({ type: 'URL' as const, text: `u${i}`, url: 'https://example.com' })),
        variables: {
          'body.1': order.variables!['body.1']!,
          'body.2': order.variables!['body.2']!,
          'body.3': order.variables!['body.3']!,
        },
      },
      '/body/buttons',
    ],
    [
      'quick replies not grouped',
      {
        buttons: [
          { type: 'QUICK_REPLY', text: 'a' },
          { type: 'PHONE_NUMBER', text: 'call', phone_number: '+15550001' },
          { type: 'QUICK_REPLY', text: 'b' },
        ],
        variables: {
          'body.1': order.variables!['body.1']!,
          'body.2': order.variables!['body.2']!,
          'body.3': order.variables!['body.3']!,
        },
      },
      '/body/buttons',
    ],
    [
      'an unmapped variable',
      {
        variables: {
          'body.1': order.variables!['body.1']!,
          'body.2': order.variables!['body.2']!,
          'buttons.1.1': order.variables!['buttons.1.1']!,
        },
      },
      '/body/variables/body.3',
    ],
    [
      'an unknown attribute',
      { variables: { ...order.variables, 'body.1': { attribute: 'favourite_colour', example: 'red' } } },
      '/body/variables/body.1/attribute',
    ],
    [
      'a binding for no variable',
      { variables: { ...order.variables, 'body.9': { value: 'x' } } },
      '/body/variables/body.9',
    ],
    [
      'currency without a code',
      {
        variables: {
          ...order.variables,
          'body.2': { attribute: 'order_total', type: 'currency', example: '10' },
        },
      },
      '/body/variables/body.2/currency_code',
    ],
    [
      'currency from a text attribute',
      {
        variables: {
          ...order.variables,
          'body.2': { attribute: 'plan', type: 'currency', currency_code: 'INR', example: '10' },
        },
      },
      '/body/variables/body.2/attribute',
    ],
    [
      'a date from a number attribute',
      {
        variables: {
          ...order.variables,
          'body.3': { attribute: 'order_total', type: 'date_time', example: 'x' },
        },
      },
      '/body/variables/body.3/attribute',
    ],
    [
      'no example for review',
      { variables: { ...order.variables, 'body.1': { attribute: 'first_name' } } },
      '/body/variables/body.1/example',
    ],
    ['a media header without a link', { header: { format: 'IMAGE' } }, '/body/header/link'],
    ['an unknown sender', { sender_id: 'snd_nope' }, '/body/sender_id'],
  ];

  it.each(bad)(
    'refuses %s with a clear error at its path; nothing is stored',
    async (_label, change, path) => {
      const before = await count();
      const response = await create({
        ...order,
        name: `t_${Math.random().toString(36).slice(2, 8)}`,
        ...change,
      });
      expect(response.statusCode).toBe(422);
      const problem = response.json();
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path);
      for (const e of problem.errors) expect(e.message.length).toBeGreaterThan(5);
      expect(await count()).toBe(before);
    },
  );

  it('refuses schema violations with a 400 and the field path', async () => {
    const response = await create({ ...order, name: 'x_y', buttons: [{ type: 'FLOW', text: 'go' }] });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].path).toBe('/body/buttons/0/type');
    const extra = await create({ ...order, name: 'x_z', colour: 'blue' });
    expect(extra.json().errors[0].path).toBe('/body/colour');
  });

  it('a duplicate name and language is a conflict', async () => {
    const response = await create(order);
    expect(response.statusCode).toBe(409);
  });

  it('previews for an inline contact: typed values, fallbacks and what is missing', async () => {
    const id = (await api.app.inject({ url: '/v1/templates', headers: api.auth }))
      .json()
      .data.find((t: { name: string }) => t.name === 'order_shipped').id;
    const preview = await api.app.inject({
      method: 'POST',
      url: `/v1/templates/${id}/preview`,
      headers: api.auth,
      payload: {
        contact: {
          external_id: 'A-77',
          language: 'en',
          timezone: 'Asia/Kolkata',
          attributes: { order_total: 1250.5, ship_date: '2026-03-05' },
        },
      },
    });
    expect(preview.statusCode).toBe(200);
    const body = preview.json();
    expect(body.body).toBe('Hi there, your order of ₹1,250.50 ships on Mar 5, 2026. Track it below.');
    expect(body.values['body.1']).toEqual({ text: 'there', source: 'fallback' });
    expect(body.buttons).toContain('Track → https://shop.example.com/track/A-77');
    expect(body.header).toBe('[image] https://cdn.example.com/box.png');
    expect(body.missing).toEqual([]);
    expect(body.rendered.components).toContainEqual({
      type: 'body',
      parameters: [
        { type: 'text', text: 'there' },
        { type: 'currency', currency: { fallback_value: '₹1,250.50', code: 'INR', amount_1000: 1250500 } },
        { type: 'date_time', date_time: { fallback_value: 'Mar 5, 2026' } },
      ],
    });
    const missing = await api.app.inject({
      method: 'POST',
      url: `/v1/templates/${id}/preview`,
      headers: api.auth,
      payload: { contact: { attributes: {} } },
    });
    expect(missing.json()).toMatchObject({ missing: ['buttons.1.1'], rendered: null });
  });

  it('previews for a stored contact by id', async () => {
    const { ids } = await upsertContacts(api.runtime, api.workspace, [
      {
        phone: '+919812340000',
        external_id: 'C-1',
        attributes: { first_name: 'Asha', order_total: 99, ship_date: '2026-03-09' },
      },
    ]);
    const id = (await api.app.inject({ url: '/v1/templates', headers: api.auth })).json().data[0].id;
    const preview = await api.app.inject({
      method: 'POST',
      url: `/v1/templates/${id}/preview`,
      headers: api.auth,
      payload: { contact_id: ids[0] },
    });
    expect(preview.statusCode).toBe(200);
    expect(preview.json().body).toMatch(/^Hi Asha, your order of ₹99.00 ships on/);
  });

  it('submits to the provider, becomes APPROVED from the review webhook, and renders into a send the provider accepts', async () => {
    const id = (await api.app.inject({ url: '/v1/templates', headers: api.auth })).json().data[0].id;
    const submitted = await api.app.inject({
      method: 'POST',
      url: `/v1/templates/${id}/submit`,
      headers: api.auth,
    });
    expect(submitted.statusCode).toBe(200);
    expect(submitted.json()).toMatchObject({ status: 'PENDING', provider_template_id: expect.any(String) });
    await sim.advance(5 * 60_000 + 1_000);
    expect(applied).toContain('order_shipped:APPROVED');
    const template = (await getTemplate(api.runtime.pg, api.workspace.id, id))!;
    expect(template.status).toBe('APPROVED');
    const content = renderTemplate(template, {
      phone: '+919812340000',
      external_id: 'C-1',
      attributes: { first_name: 'Asha', order_total: 10, ship_date: '2026-03-09' },
    });
    const adapter = new WhatsAppAdapter({
      baseUrl: sim.url,
      apiVersion: 'v23.0',
      phoneNumberId: '5000',
      accessToken: 'tok',
      appSecret: 'app-secret',
    });
    const outcome = await adapter.send({ sendId: 's1', to: '+919812340000', content });
    expect(outcome).toMatchObject({ class: 'accepted' });
    // An approved template cannot be edited.
    const edit = await api.app.inject({
      method: 'PUT',
      url: `/v1/templates/${id}`,
      headers: api.auth,
      payload: order,
    });
    expect(edit.statusCode).toBe(409);
  });

  it('a rejected template keeps the reason, can be fixed and resubmitted; pauses arrive too', async () => {
    const promo: TemplateInput = {
      name: 'weekend_note',
      language: 'en_US',
      category: 'UTILITY',
      sender_id: senderId,
      body: 'Hi {{1}}, get 20% off everything this weekend.',
      variables: { 'body.1': { attribute: 'first_name', fallback: 'there' } },
    };
    const id = (await create(promo)).json().id;
    await api.app.inject({ method: 'POST', url: `/v1/templates/${id}/submit`, headers: api.auth });
    await sim.advance(6 * 60_000);
    let template = (await api.app.inject({ url: `/v1/templates/${id}`, headers: api.auth })).json();
    expect(template).toMatchObject({ status: 'REJECTED', status_reason: 'INCORRECT_CATEGORY' });
    const fixed = await api.app.inject({
      method: 'PUT',
      url: `/v1/templates/${id}`,
      headers: api.auth,
      payload: { ...promo, category: 'MARKETING' },
    });
    expect(fixed.statusCode).toBe(200);
    expect(
      (await api.app.inject({ method: 'POST', url: `/v1/templates/${id}/submit`, headers: api.auth })).json()
        .status,
    ).toBe('PENDING');
    await sim.advance(6 * 60_000);
    template = (await api.app.inject({ url: `/v1/templates/${id}`, headers: api.auth })).json();
    expect(template.status).toBe('APPROVED');
    sim.sim.setTemplateStatus(template.provider_template_id, 'PAUSED', 'NONE', 'FIRST_PAUSE');
    await sim.advance(1_000);
    template = (await api.app.inject({ url: `/v1/templates/${id}`, headers: api.auth })).json();
    expect(template).toMatchObject({ status: 'PAUSED', status_reason: 'FIRST_PAUSE' });
    const events = (await api.app.inject({ url: `/v1/templates/${id}/events`, headers: api.auth })).json()
      .data;
    expect(events.map((e: { event: string }) => e.event)).toEqual(['REJECTED', 'APPROVED', 'PAUSED']);
    // A duplicated webhook is one event; a late PENDING does not undo the pause.
    const base = {
      kind: 'template_status' as const,
      templateId: template.provider_template_id,
      templateName: 'weekend_note',
    };
    await applyTemplateStatusEvent(api.runtime, {
      ...base,
      event: 'PAUSED',
      reason: 'NONE',
      otherInfo: 'FIRST_PAUSE',
    });
    await applyTemplateStatusEvent(api.runtime, { ...base, event: 'PENDING', reason: 'NONE' });
    template = (await api.app.inject({ url: `/v1/templates/${id}`, headers: api.auth })).json();
    expect(template).toMatchObject({ status: 'PAUSED', status_reason: 'FIRST_PAUSE' });
    const after = (await api.app.inject({ url: `/v1/templates/${id}/events`, headers: api.auth })).json()
      .data;
    expect(after.map((e: { event: string }) => e.event)).toEqual([
      'REJECTED',
      'APPROVED',
      'PAUSED',
      'PENDING',
    ]);
  });

  it('free-form content for other channels uses the same variables', async () => {
    const response = await create({
      name: 'sms_reminder',
      language: 'en',
      category: 'UTILITY',
      channel: 'sms',
      content: { type: 'text', text: 'Hi {{name}}, your plan {{plan}} renews soon.' },
      variables: {
        'text.name': { attribute: 'first_name', fallback: 'there' },
        'text.plan': { attribute: 'plan', fallback: 'Basic' },
      },
    });
    expect(response.statusCode).toBe(201);
    expect(response.json().status).toBe('READY');
    const rendered = renderTemplate(response.json(), { attributes: { first_name: 'Li' } });
    expect(rendered).toEqual({ type: 'text', body: 'Hi Li, your plan Basic renews soon.' });
  });

  it('media and buttons content for other channels fill the same variables and go out through the adapter', async () => {
    const media = await create({
      name: 'photo_note',
      language: 'en',
      category: 'MARKETING',
      channel: 'whatsapp',
      content: {
        type: 'media',
        media_type: 'image',
        link: 'https://cdn.example.com/a.png',
        caption: 'For {{name}}',
      },
      variables: { 'text.name': { attribute: 'first_name', fallback: 'you' } },
    });
    expect(media.statusCode).toBe(201);
    const buttons = await create({
      name: 'session_buttons',
      language: 'en',
      category: 'MARKETING',
      content: {
        type: 'buttons',
        header: 'Hi {{name}}',
        text: 'Your plan {{plan}} renews soon. Keep it?',
        footer: 'Chorus',
        buttons: [
          { id: 'keep', title: 'Keep' },
          { id: 'stop', title: 'Stop' },
        ],
      },
      variables: {
        'header.name': { attribute: 'first_name', fallback: 'there' },
        'text.plan': { attribute: 'plan', fallback: 'Basic' },
      },
    });
    expect(buttons.statusCode).toBe(201);
    const contact = { attributes: { first_name: 'Li', plan: 'Pro' } };
    const renderedMedia = renderTemplate(media.json(), contact);
    expect(renderedMedia).toEqual({
      type: 'media',
      mediaType: 'image',
      link: 'https://cdn.example.com/a.png',
      caption: 'For Li',
    });
    const renderedButtons = renderTemplate(buttons.json(), contact);
    expect(renderedButtons).toEqual({
      type: 'buttons',
      header: 'Hi Li',
      body: 'Your plan Pro renews soon. Keep it?',
      footer: 'Chorus',
      buttons: [
        { id: 'keep', title: 'Keep' },
        { id: 'stop', title: 'Stop' },
      ],
    });
    // Session messages: the provider takes them inside the customer-service window the reply opened.
    const adapter = new WhatsAppAdapter({
      baseUrl: sim.url,
      apiVersion: 'v23.0',
      phoneNumberId: '5000',
      accessToken: 'tok',
      appSecret: 'app-secret',
    });
    sim.sim.inbound('5000', '+919812349999', 'hi');
    for (const content of [renderedMedia, renderedButtons])
      expect(await adapter.send({ sendId: 's_free', to: '+919812349999', content })).toMatchObject({
        class: 'accepted',
      });
  });

  it('a bad update is refused at its path and leaves the stored template as it was', async () => {
    const created = await create({ ...order, name: 'update_target' });
    expect(created.statusCode).toBe(201);
    const id = created.json().id;
    const before = (await api.app.inject({ url: `/v1/templates/${id}`, headers: api.auth })).json();
    for (const [change, path] of [
      [{ body: '{{1}}, your order has shipped today' }, '/body/body'],
      [
        { variables: { ...order.variables, 'body.1': { attribute: 'favourite_colour', example: 'x' } } },
        '/body/variables/body.1/attribute',
      ],
      [{ name: 'Update Target' }, '/body/name'],
    ] as const) {
      const response = await api.app.inject({
        method: 'PUT',
        url: `/v1/templates/${id}`,
        headers: api.auth,
        payload: { ...order, name: 'update_target', ...change },
      });
      expect(response.statusCode).toBe(422);
      expect(response.json().errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    const after = (await api.app.inject({ url: `/v1/templates/${id}`, headers: api.auth })).json();
    expect(after).toEqual(before);
    await api.app.inject({ method: 'DELETE', url: `/v1/templates/${id}`, headers: api.auth });
  });

  it('deletes, at the provider too', async () => {
    const list = (await api.app.inject({ url: '/v1/templates', headers: api.auth })).json().data;
    const submitted = list.find((t: { name: string }) => t.name === 'weekend_note');
    const del = await api.app.inject({
      method: 'DELETE',
      url: `/v1/templates/${submitted.id}`,
      headers: api.auth,
    });
    expect(del.statusCode).toBe(204);
    expect(sim.sim.findTemplate('100000000000001', 'weekend_note', 'en_US')).toBeUndefined();
    expect(
      (await api.app.inject({ url: `/v1/templates/${submitted.id}`, headers: api.auth })).statusCode,
    ).toBe(404);
  });
});

describe('rendering agrees with the provider-side checks', () => {
  it('a rendered template always passes the send check of its own definition (property)', () => {
    const word = fc.stringMatching(/^[a-z]{2,8}$/);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        fc.array(fc.oneof(word, fc.constant(undefined)), { minLength: 5, maxLength: 5 }),
        fc.boolean(),
        (vars, named, attributeValues, withUrl) => {
          const names = Array.from({ length: vars }, (_, i) => (named ? `v_${i}` : String(i + 1)));
          const body = `Hello ${names.map((n) => `{{${n}}} and`).join(' ')} goodbye`;
          const input: TemplateInput = {
            name: 'prop',
            language: 'en_US',
            category: 'MARKETING',
            parameter_format: named ? 'NAMED' : 'POSITIONAL',
            body,
            buttons: withUrl ? [{ type: 'URL', text: 'Go', url: 'https://x.example/{{1}}' }] : [],
            variables: Object.fromEntries([
              ...names.map((n, i) => [
                `body.${n}`,
                { attribute: `a${i}`, fallback: 'friend', example: 'ex' },
              ]),
              ...(withUrl ? [['buttons.0.1', { value: 'path', example: 'path' }]] : []),
            ]),
          };
          const template = {
            ...input,
            header: null,
            footer: null,
            buttons: input.buttons ?? [],
            content: null,
            variables: input.variables ?? {},
            parameter_format: input.parameter_format ?? 'POSITIONAL',
            body: input.body ?? null,
          };
          const attributes = Object.fromEntries(attributeValues.flatMap((v, i) => (v ? [[`a${i}`, v]] : [])));
          const rendered = renderTemplate(template, { attributes });
          if (rendered.type !== 'template') throw new Error('not a template');
          expect(checkSendParameters(toMetaDefinition(input).definition, rendered.components)).toBeNull();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a variable with no value and no fallback fails rendering by name', () => {
    const template = {
      name: 't',
      language: 'en',
      parameter_format: 'POSITIONAL' as const,
      header: null,
      body: 'Hi {{1}}, welcome aboard',
      footer: null,
      buttons: [],
      content: null,
      variables: { 'body.1': { attribute: 'first_name' } },
    };
    expect(() => renderTemplate(template, { attributes: {} })).toThrow(TemplateRenderError);
    try {
      renderTemplate(template, { attributes: {} });
    } catch (error) {
      expect((error as TemplateRenderError).missing).toEqual(['body.1']);
    }
  });
});
