import type { Runtime } from '../../engine/runtime.ts';

/**
 * Writes a Kolkata contact's send history for June 1-20, 2026: a send each day at every given UTC
 * time, read 10 minutes later where `read` says so.
 */
export async function writeDailySends(
  runtime: Runtime,
  workspaceId: string,
  contactId: string,
  times: readonly (readonly [utc: string, read: boolean])[],
): Promise<void> {
  const sends: Record<string, unknown>[] = [];
  const statuses: Record<string, unknown>[] = [];
  for (let d = 1; d <= 20; d++)
    for (const [utc, read] of times) {
      const id = `s${d}_${utc}`;
      const at = `2026-06-${String(d).padStart(2, '0')}T${utc}:00Z`;
      sends.push({
        workspace_id: workspaceId,
        send_id: id,
        contact_id: contactId,
        country: 'IN',
        timezone: 'Asia/Kolkata',
        provider_message_id: id,
        outcome: 'accepted',
        sent_at: at,
      });
      if (read)
        statuses.push({
          workspace_id: workspaceId,
          provider_message_id: id,
          status: 'read',
          ts: new Date(Date.parse(at) + 600_000).toISOString(),
        });
    }
  await runtime.ch.insert('sends', sends);
  await runtime.ch.insert('message_statuses', statuses);
}
