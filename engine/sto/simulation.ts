import { DateTime } from 'luxon';
import { type RecipientProfile, recipientProfile } from '../../simulator/recipients.ts';
import type { Runtime } from '../runtime.ts';
import { seededRandom } from './random.ts';
import { isQuiet, type QuietHours } from './slots.ts';

/**
 * A simulated population for the send-time model: the simulator's seeded recipients (their true
 * read probability by local hour is known) and a history of exploration sends at uniformly random
 * allowed hours, with outcomes drawn from that truth, written straight into ClickHouse.
 */
export interface SimulatedContact {
  id: string;
  profile: RecipientProfile;
}

/** Country mix of the population, by mobile prefix (the simulator derives zones from phones). */
const PREFIXES: [prefix: string, length: number, weight: number][] = [
  ['+9198', 13, 35],
  ['+55119', 14, 15],
  ['+1212', 12, 10],
  ['+62812', 14, 10],
  ['+447911', 13, 6],
  ['+2348034', 14, 6],
  ['+49151', 14, 6],
  ['+5255', 13, 5],
  ['+97150', 13, 4],
  ['+614', 12, 3],
];

export function simulatedPopulation(seed: string, size: number): SimulatedContact[] {
  const random = seededRandom(`population:${seed}`);
  const total = PREFIXES.reduce((a, p) => a + p[2], 0);
  const out: SimulatedContact[] = [];
  for (let i = 0; out.length < size; i++) {
    let draw = random() * total;
    let choice = PREFIXES[0]!;
    for (const p of PREFIXES) {
      draw -= p[2];
      choice = p;
      if (draw < 0) break;
    }
    const [prefix, length] = choice;
    let phone = `${prefix}5`;
    while (phone.length < length) phone += Math.floor(random() * 10);
    const profile = recipientProfile(seed, phone);
    // only reachable people get sends; the others never enter a send-time history
    if (!profile.onWhatsApp || profile.stoppedMarketing) continue;
    out.push({ id: `c${String(i).padStart(7, '0')}`, profile });
  }
  return out;
}

/** The true probability that a send at `at` is read within 24 h. */
export function trueReadRate(profile: RecipientProfile, at: Date): number {
  const local = DateTime.fromJSDate(at, { zone: profile.timezone });
  return profile.readProbabilityAt(local.hour, local.weekday);
}

export interface HistoryOptions {
  workspaceId: string;
  until: Date;
  days: number;
  /** Chance that a contact gets a send on a given day. */
  sendChance: number;
  quietHours: QuietHours;
  seed: string;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Writes `days` of exploration sends before `until`: on each day a contact is sent to with
 * `sendChance`, at a uniformly random allowed local hour (propensity 1 / allowed hours), read with
 * the profile's probability at that hour and day, replied with its reply probability.
 */
export async function writeSimulatedHistory(
  runtime: Runtime,
  population: SimulatedContact[],
  options: HistoryOptions,
): Promise<{ sends: number; reads: number }> {
  const allowed = Array.from({ length: 24 }, (_, h) => h).filter((h) => !isQuiet(h, options.quietHours));
  const propensity = 1 / allowed.length;
  const random = seededRandom(`history:${options.seed}`);
  const firstDay = DateTime.fromJSDate(options.until, { zone: 'UTC' })
    .startOf('day')
    .minus({ days: options.days });
  let sends: Record<string, unknown>[] = [];
  let statuses: Record<string, unknown>[] = [];
  let totalSends = 0;
  let reads = 0;
  const flush = async () => {
    await runtime.ch.insert('sends', sends);
    await runtime.ch.insert('message_statuses', statuses);
    sends = [];
    statuses = [];
  };
  // local (zone, day, hour) -> UTC instant and weekday, computed once: luxon is the slow part
  const hourStarts = new Map<string, { ms: number; weekday: number }>();
  const hourStart = (zone: string, day: number, hour: number) => {
    const key = `${zone}|${day}|${hour}`;
    let found = hourStarts.get(key);
    if (!found) {
      const local = firstDay.setZone(zone, { keepLocalTime: true }).plus({ days: day }).set({ hour });
      found = { ms: local.toMillis(), weekday: local.weekday % 7 };
      hourStarts.set(key, found);
    }
    return found;
  };
  for (let c = 0; c < population.length; c++) {
    const { id, profile } = population[c]!;
    for (let d = 0; d < options.days; d++) {
      if (random() >= options.sendChance) continue;
      const hour = allowed[Math.floor(random() * allowed.length)]!;
      const start = hourStart(profile.timezone, d, hour);
      const at = new Date(start.ms + Math.floor(random() * 10) * 60_000);
      const local = { hour, weekday: start.weekday };
      if (at.getTime() >= options.until.getTime()) continue;
      const sendId = `sim_${id}_${d}`;
      const messageId = `wamid.${sendId}`;
      sends.push({
        workspace_id: options.workspaceId,
        send_id: sendId,
        campaign_id: 'sim',
        contact_id: id,
        phone: profile.phone,
        country: profile.country ?? '',
        timezone: profile.timezone,
        provider_message_id: messageId,
        outcome: 'accepted',
        sent_at: at.toISOString(),
        exploration: 1,
        propensity,
      });
      totalSends++;
      if (random() < profile.readProbabilityAt(local.hour, local.weekday)) {
        reads++;
        // people read soon after delivery when they read at all (mean 20 min), so a read's hour is a fair
        // 'last active hour' for that baseline
        const readAt = new Date(
          at.getTime() + profile.deliveryDelayMs - Math.log(1 - random()) * 20 * 60_000,
        );
        statuses.push({
          workspace_id: options.workspaceId,
          provider_message_id: messageId,
          status: 'read',
          ts: readAt.toISOString(),
        });
        if (random() < profile.replyProbability)
          statuses.push({
            workspace_id: options.workspaceId,
            provider_message_id: messageId,
            status: 'replied',
            ts: new Date(readAt.getTime() + 60_000).toISOString(),
          });
      }
    }
    if (sends.length >= 100_000) {
      await flush();
      options.onProgress?.(c + 1, population.length);
    }
  }
  await flush();
  options.onProgress?.(population.length, population.length);
  return { sends: totalSends, reads };
}
