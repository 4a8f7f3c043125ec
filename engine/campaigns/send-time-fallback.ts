/**
 * The send-time fallback: every contact at the workspace's best local hour, learnt from history
 * (reads and replies by the recipient's local hour), inside the campaign's window. It implements the
 * same SendTimeChooser as the send-time model, which replaces it when a workspace has one.
 */
import type { Runtime } from '../runtime.ts';
import type { SendTimeChooser, SendTimePlan, SendTimeRequest } from '../sto/types.ts';
import { localTime } from '../throttle/index.ts';

/** Engagements (read or replied) per local hour over the last 90 days; empty without history. */
export async function engagementByLocalHour(runtime: Runtime, workspaceId: string): Promise<number[]> {
  const db = runtime.ch.database;
  const rows = await runtime.ch.rows<{ hour: number; n: string }>(
    `SELECT toHour(toTimeZone(st.ts, if(s.timezone = '', 'UTC', s.timezone))) AS hour, count() AS n
       FROM ${db}.message_statuses AS st
       INNER JOIN ${db}.sends AS s ON s.workspace_id = st.workspace_id AND s.provider_message_id = st.provider_message_id
      WHERE st.workspace_id = {ws:String} AND st.status IN ('read', 'replied') AND st.ts > now() - INTERVAL 90 DAY
      GROUP BY hour`,
    { ws: workspaceId },
  );
  const hours = new Array<number>(24).fill(0);
  for (const row of rows) hours[Number(row.hour)] = Number(row.n);
  return hours;
}

/** Hours ranked best first; ties and empty history fall back to a sensible default order. */
export function rankHours(counts: number[], quiet?: { start: number; end: number }): number[] {
  const defaultOrder = [10, 11, 12, 18, 19, 13, 17, 14, 16, 15, 9, 20];
  const allowed = (h: number) =>
    !quiet ||
    (quiet.start < quiet.end ? h < quiet.start || h >= quiet.end : h < quiet.start && h >= quiet.end);
  const hours = Array.from({ length: 24 }, (_, h) => h).filter(allowed);
  return hours.sort((a, b) => {
    const diff = (counts[b] ?? 0) - (counts[a] ?? 0);
    if (diff !== 0) return diff;
    const ra = defaultOrder.indexOf(a);
    const rb = defaultOrder.indexOf(b);
    return (ra < 0 ? 99 : ra) - (rb < 0 ? 99 : rb);
  });
}

/** The first instant in [start, end) at the top of a given local hour in a zone, if any. */
export function nextLocalHour(start: Date, end: Date, zone: string, hour: number): Date | undefined {
  const first = new Date(Math.ceil(start.getTime() / 3_600_000) * 3_600_000);
  for (let t = first.getTime(); t < end.getTime(); t += 3_600_000) {
    // Zones with half-hour offsets land on :30; their hour still starts within this UTC hour.
    const at = new Date(t);
    const local = localTime(at, zone);
    if (local.hour === hour)
      return new Date(t - local.minute * 60_000 < start.getTime() ? t : t - local.minute * 60_000);
  }
  return undefined;
}

export function workspaceBestHourChooser(runtime: Runtime): SendTimeChooser {
  return {
    async choose(request: SendTimeRequest): Promise<SendTimePlan[]> {
      const ranked = rankHours(await engagementByLocalHour(runtime, request.workspaceId), request.quietHours);
      return request.contacts.map((contact) => {
        const zone = contact.timezone || 'UTC';
        for (const hour of ranked) {
          const at = nextLocalHour(request.window.start, request.window.end, zone, hour);
          if (at) return { contactId: contact.id, at, exploration: false, propensity: 1 };
        }
        return { contactId: contact.id, at: request.window.start, exploration: false, propensity: 1 };
      });
    },
  };
}
