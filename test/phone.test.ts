// The phone normalization's validity check (compiled patterns, engine/contacts/phone.ts) against the
// library's own `PhoneNumber.isValid()`: the same answer, reason and E.164 text for every input.
import fc from 'fast-check';
import examples from 'libphonenumber-js/examples.mobile.json' with { type: 'json' };
import {
  type CountryCode,
  getCountries,
  getCountryCallingCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { normalizePhone, type PhoneResult, reasonFor } from '../engine/contacts/phone.ts';

/** normalizePhone as it was, with the library's `isValid()`: the reference. */
function reference(raw: string, defaultRegion: string): PhoneResult {
  const text = raw.trim();
  if (text.length === 0) return { ok: false, reason: 'is empty' };
  if (text.length > 40) return { ok: false, reason: 'is too long' };
  const region = isSupportedCountry(defaultRegion) ? (defaultRegion as CountryCode) : undefined;
  const options = region ? { defaultCountry: region } : undefined;
  const parsed = parsePhoneNumberFromString(text, options);
  if (!parsed)
    return { ok: false, reason: reasonFor(text, validatePhoneNumberLength(text, options) ?? 'NOT_A_NUMBER') };
  if (!parsed.isValid()) {
    const lengthProblem = validatePhoneNumberLength(text, options);
    if (lengthProblem) return { ok: false, reason: reasonFor(text, lengthProblem) };
    return {
      ok: false,
      reason: `is not a valid number${parsed.country ? ` in ${parsed.country}` : ''} (no such number range)`,
    };
  }
  return { ok: true, e164: parsed.number, country: parsed.country ?? null };
}

const countries = getCountries();
const callingCodes = [...new Set(countries.map((c) => getCountryCallingCode(c)))];
// Example mobile numbers of every country, so that valid numbers are generated too (random digits
// rarely fall in a number range), with their last digits changed.
const exampleNumbers = Object.entries(examples as Record<string, string>).map(([country, national]) => ({
  country,
  national,
  code: getCountryCallingCode(country as CountryCode),
}));
const regions = ['IN', 'US', 'GB', 'BR', 'DE', 'ID', 'NG', 'MX', 'FR', 'AR', 'IT', 'RU', 'CN', 'ZZ'];
const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));

describe('phone validity with compiled patterns', () => {
  it('every example number of every country, as given and with changed last digits', () => {
    for (const { country, national, code } of exampleNumbers)
      for (const raw of [`+${code}${national}`, national, `+${code}${national.slice(0, -2)}00`])
        expect(normalizePhone(raw, country), `${raw} in ${country}`).toEqual(reference(raw, country));
  });

  it('equals isValid() on generated international numbers', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...callingCodes),
        digits(1, 14),
        fc.constantFrom(...regions),
        (code, rest, region) => {
          const raw = `+${code}${rest}`;
          expect(normalizePhone(raw, region)).toEqual(reference(raw, region));
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('equals isValid() on numbers near the examples, international and national, with separators', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...exampleNumbers),
        digits(0, 4),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom('', ' ', '-', '(0)'),
        fc.boolean(),
        (example, tail, cut, separator, international) => {
          const national = example.national.slice(0, example.national.length - cut) + tail;
          const spaced = `${national.slice(0, 3)}${separator}${national.slice(3)}`;
          const raw = international ? `+${example.code} ${spaced}` : spaced;
          expect(normalizePhone(raw, example.country), raw).toEqual(reference(raw, example.country));
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('equals isValid() on national numbers in several default regions', () => {
    fc.assert(
      fc.property(digits(3, 15), fc.constantFrom(...regions), (raw, region) => {
        expect(normalizePhone(raw, region)).toEqual(reference(raw, region));
      }),
      { numRuns: 20_000 },
    );
  });
});
