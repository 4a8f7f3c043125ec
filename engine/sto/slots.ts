import { DateTime, IANAZone } from 'luxon';

/**
 * A slot is a local hour of the day on a weekday or on a weekend day: `weekend * 24 + hour`, 48 in
 * all. Not hour-of-week (168): with a few sends a week over 90 days a contact would have under one
 * send per hour-of-week, while hour-of-day pools them four times over and the weekday/weekend split
 * keeps the one weekly effect that is large (work days against days off).
 */
export const SLOTS = 48;
export const HOURS = 24;

export const slotOf = (weekend: boolean, hour: number): number => (weekend ? HOURS : 0) + hour;
export const hourOfSlot = (slot: number): number => slot % HOURS;
export const isWeekendSlot = (slot: number): boolean => slot >= HOURS;
/** ISO weekday (1 = Monday ... 7 = Sunday); Saturday and Sunday are the weekend. */
export const isWeekend = (isoWeekday: number): boolean => isoWeekday >= 6;

export interface QuietHours {
  start: number;
  end: number;
}

export class SendTimeInputError extends Error {
  readonly code: string;
  readonly path: string;
  constructor(code: string, path: string, message: string) {
    super(message);
    this.code = code;
    this.path = path;
  }
}

export function isValidTimeZone(zone: string | null | undefined): zone is string {
  return typeof zone === 'string' && zone.length > 0 && IANAZone.isValidZone(zone);
}

/** True when a local hour is inside quiet hours [start, end), which may wrap past midnight. */
export function isQuiet(hour: number, quiet: QuietHours | null | undefined): boolean {
  if (!quiet) return false;
  return quiet.start < quiet.end
    ? hour >= quiet.start && hour < quiet.end
    : hour >= quiet.start || hour < quiet.end;
}

/** The longest window a plan may span; longer ones are almost always a unit mistake. */
export const MAX_WINDOW_DAYS = 31;

/** Checks a window and quiet hours; throws SendTimeInputError with the field at fault. */
export function validateSendTimeInput(window: { start: Date; end: Date }, quiet?: QuietHours | null): void {
  const start = window.start.getTime();
  const end = window.end.getTime();
  if (!Number.isFinite(start))
    throw new SendTimeInputError('invalid_window', 'window_start', 'not a valid time');
  if (!Number.isFinite(end)) throw new SendTimeInputError('invalid_window', 'window_end', 'not a valid time');
  if (end <= start)
    throw new SendTimeInputError('invalid_window', 'window_end', 'window_end must be after window_start');
  if (end - start < 3_600_000)
    throw new SendTimeInputError(
      'window_too_short',
      'window_end',
      'the window must span at least one hour: send times are chosen by the hour, so a shorter window leaves no choice (send immediately instead)',
    );
  if (end - start > MAX_WINDOW_DAYS * 86_400_000)
    throw new SendTimeInputError(
      'window_too_long',
      'window_end',
      `the window may span at most ${MAX_WINDOW_DAYS} days`,
    );
  if (quiet) {
    for (const [key, value] of Object.entries(quiet)) {
      if (!Number.isInteger(value) || value < 0 || value > 23)
        throw new SendTimeInputError('invalid_quiet_hours', `quiet_${key}`, 'must be a whole hour 0-23');
    }
    if (quiet.start === quiet.end)
      throw new SendTimeInputError(
        'invalid_quiet_hours',
        'quiet_end',
        'quiet hours start and end at the same hour; leave them out for none',
      );
  }
}

/** One allowed send time inside a window for one zone: when, and which local slot it falls in. */
export interface Candidate {
  at: Date;
  hour: number;
  slot: number;
}

/**
 * The allowed send times of a window in one zone: the window start, then the start of every
 * following local hour before the window end, minus the quiet hours. Same for every contact of a
 * zone, so callers compute it once per zone.
 */
export function candidatesFor(
  zone: string,
  window: { start: Date; end: Date },
  quiet?: QuietHours | null,
): Candidate[] {
  const out: Candidate[] = [];
  const iana = IANAZone.create(zone);
  const end = window.end.getTime();
  let t = window.start.getTime();
  while (t < end) {
    const local = DateTime.fromMillis(t, { zone });
    if (!isQuiet(local.hour, quiet))
      out.push({ at: new Date(t), hour: local.hour, slot: slotOf(isWeekend(local.weekday), local.hour) });
    // the next instant the local clock shows a whole hour; computed on the UTC line so it always advances
    const localMs = t + iana.offset(t) * 60_000;
    t += Math.floor(localMs / 3_600_000) * 3_600_000 + 3_600_000 - localMs;
  }
  return out;
}
