import type { Runtime } from '../engine/runtime.ts';
import { getWorkspace, listWorkspaces, type Workspace } from '../engine/workspaces.ts';

/** The workspace named by --workspace, or the only one when there is exactly one. */
export async function resolveWorkspace(runtime: Runtime, id: string | undefined): Promise<Workspace> {
  if (id) {
    const workspace = await getWorkspace(runtime.pg, id);
    if (!workspace) throw new Error(`no workspace ${id} (list them with: chorus workspace list)`);
    return workspace;
  }
  const all = await listWorkspaces(runtime.pg);
  if (all.length === 1) return all[0]!;
  if (all.length === 0)
    throw new Error('no workspace yet: create one with chorus workspace create --name NAME');
  throw new Error(
    `there are ${all.length} workspaces; pass --workspace ID (${all.map((w) => w.id).join(', ')})`,
  );
}

export const WORKSPACE_OPTION = [
  '--workspace <id>',
  'workspace id (default: the only workspace, if there is one)',
] as const;
