import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCompleteJsonObject } from '../engine/webhooks/body.ts';

const bytes = (text: string) => Buffer.from(text, 'utf8');

describe('the webhook body check (a byte scan instead of a parse)', () => {
  it('accepts every serialized object and refuses every prefix of it', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.boolean(), (value, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined);
        const body = bytes(text);
        expect(isCompleteJsonObject(body)).toBe(true);
        for (let cut = 0; cut < body.length; cut++) {
          expect(isCompleteJsonObject(body.subarray(0, cut))).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('refuses what is not one object: arrays, scalars, two objects, stray or mismatched brackets', () => {
    for (const text of ['[]', '"x"', '1', '{}{}', '{"a":1}}', '{"a":[1}', '{"a":"}', ' ', '', '{"a":"\\"}']) {
      expect(isCompleteJsonObject(bytes(text)), text).toBe(false);
    }
    for (const text of ['{}', ' {"a":"}"} \n', '{"a":"\\\\"}', '{"a":[{"b":"]"}]}']) {
      expect(isCompleteJsonObject(bytes(text)), text).toBe(true);
    }
  });
});
