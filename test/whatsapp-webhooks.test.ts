// Parsing and verifying Cloud API webhooks, on fixtures written from the facts page's shapes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WhatsAppAdapter } from '../engine/channels/whatsapp/adapter.ts';
import {
  parseWhatsAppWebhook,
  signWebhook,
  verifyWebhookSignature,
  WebhookParseError,
} from '../engine/channels/whatsapp/index.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/whatsapp/${name}.json`, import.meta.url));

describe('WhatsApp webhook parsing', () => {
  it('a sent status with pricing and our send id', () => {
    expect(parseWhatsAppWebhook(fixture('status-sent'))).toEqual([
      {
        kind: 'status',
        providerMessageId: 'wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI',
        status: 'sent',
        timestamp: new Date(1772445600_000),
        recipient: '+919810000000',
        sendId: 'send_123',
        errors: undefined,
        pricing: { billable: true, category: 'marketing', type: 'regular' },
        senderAddress: '1000',
      },
    ]);
  });

  it('a failed status with its error code', () => {
    const [event] = parseWhatsAppWebhook(fixture('status-failed'));
    expect(event).toMatchObject({
      kind: 'status',
      status: 'failed',
      sendId: 'send_124',
      errors: [{ code: 131026, title: 'Message undeliverable', details: 'Message undeliverable' }],
    });
  });

  it('an inbound reply carries the wamid it replies to', () => {
    expect(parseWhatsAppWebhook(fixture('inbound-reply'))).toEqual([
      {
        kind: 'message',
        providerMessageId: 'wamid.reply1',
        from: '+919810000000',
        timestamp: new Date(1772446000_000),
        type: 'text',
        text: 'STOP',
        payload: undefined,
        contextMessageId: 'wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI',
        profileName: 'Asha',
        senderAddress: '1000',
      },
    ]);
  });

  it('a quick-reply button press gives its payload', () => {
    expect(parseWhatsAppWebhook(fixture('inbound-button'))[0]).toMatchObject({
      kind: 'message',
      type: 'button',
      payload: 'Yes',
      text: 'Yes',
      contextMessageId: 'wamid.original2',
    });
  });

  it('template status, quality and user preference updates', () => {
    expect(parseWhatsAppWebhook(fixture('template-status'))).toEqual([
      {
        kind: 'template_status',
        event: 'REJECTED',
        templateId: '900000000000001',
        templateName: 'order_update',
        language: 'en_US',
        category: 'UTILITY',
        reason: 'INCORRECT_CATEGORY',
        otherInfo: 'FIRST_PAUSE',
      },
    ]);
    expect(parseWhatsAppWebhook(fixture('quality'))).toEqual([
      {
        kind: 'quality',
        senderAddress: '15550001000',
        event: 'DOWNGRADE',
        currentLimit: 'TIER_250',
        maxDailyConversationsPerBusiness: 250,
      },
    ]);
    expect(parseWhatsAppWebhook(fixture('user-preferences'))).toEqual([
      {
        kind: 'user_preference',
        recipient: '+919810000000',
        category: 'marketing_messages',
        value: 'stop',
        timestamp: new Date(1772446000_000),
      },
    ]);
  });

  it('keeps unknown fields as kind unknown', () => {
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [{ field: 'account_update', value: { event: 'VERIFIED_ACCOUNT' } }] }],
    });
    expect(parseWhatsAppWebhook(Buffer.from(body))).toEqual([
      { kind: 'unknown', field: 'account_update', value: { event: 'VERIFIED_ACCOUNT' } },
    ]);
  });

  it.each(['not json', '{"object":"x"}', '[]'])('throws on a malformed body: %s', (body) => {
    expect(() => parseWhatsAppWebhook(Buffer.from(body))).toThrow(WebhookParseError);
  });
});

describe('X-Hub-Signature-256', () => {
  const body = fixture('status-sent');
  const secret = 'app-secret';
  const adapter = new WhatsAppAdapter({
    baseUrl: 'http://x',
    apiVersion: 'v23.0',
    phoneNumberId: '1',
    accessToken: 't',
    appSecret: secret,
  });

  it('verifies HMAC-SHA256 of the raw bytes with the app secret', () => {
    const signature = signWebhook(body, secret);
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(adapter.verifyWebhook(body, { 'x-hub-signature-256': signature })).toBe(true);
    expect(adapter.verifyWebhook(body, { 'X-Hub-Signature-256': signature })).toBe(true);
  });

  it('rejects a wrong secret, a changed byte, a missing or malformed header', () => {
    const signature = signWebhook(body, secret);
    expect(verifyWebhookSignature(body, { 'x-hub-signature-256': signWebhook(body, 'other') }, secret)).toBe(
      false,
    );
    const changed = Buffer.from(body);
    changed[10] = changed[10]! ^ 1;
    expect(adapter.verifyWebhook(changed, { 'x-hub-signature-256': signature })).toBe(false);
    // Re-serialized JSON is different bytes: verification must use the raw body.
    const reserialized = Buffer.from(JSON.stringify(JSON.parse(body.toString())));
    expect(adapter.verifyWebhook(reserialized, { 'x-hub-signature-256': signature })).toBe(false);
    expect(adapter.verifyWebhook(body, {})).toBe(false);
    expect(adapter.verifyWebhook(body, { 'x-hub-signature-256': 'sha256=abc' })).toBe(false);
  });
});
