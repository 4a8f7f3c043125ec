/** The simulator's HTTP face: the Cloud API endpoints Chorus calls, plus /_sim/* controls and the log. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetaTemplateDefinition } from '../engine/templates/validation.ts';
import { errorBody, httpStatusFor, type SimError } from './errors.ts';
import {
  type Fault,
  type SimLogEntry,
  type SimTemplate,
  Simulator,
  type SimulatorOptions,
  type Tier,
} from './simulator.ts';

export interface StartSimulatorOptions extends SimulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
}

export interface RunningSimulator {
  /** e.g. http://127.0.0.1:41234: use as a sender's base_url. */
  url: string;
  port: number;
  sim: Simulator;
  /** Ground truth: everything received and done, in order. */
  readonly log: SimLogEntry[];
  counts: Record<string, number>;
  now(): Date;
  /** Manual clock: move simulated time forward, running everything due (webhooks included). */
  advance(ms: number): Promise<void>;
  /** Wait for webhook posts in flight. */
  settle(): Promise<void>;
  injectFault(fault: Fault): void;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function templateJson(t: SimTemplate) {
  return {
    id: t.id,
    name: t.name,
    language: t.language,
    status: t.status,
    category: t.category,
    ...(t.definition.parameter_format ? { parameter_format: t.definition.parameter_format } : {}),
    components: t.definition.components,
    ...(t.status === 'REJECTED' ? { rejected_reason: t.rejectedReason } : {}),
  };
}

export async function startSimulator(options: StartSimulatorOptions): Promise<RunningSimulator> {
  const sim = new Simulator(options);
  const fail = (res: ServerResponse, error: SimError) =>
    json(res, httpStatusFor(error.code), errorBody(error, sim.traceId()));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const rawUrl = req.url ?? '/';
    const query = rawUrl.indexOf('?');
    // The send path is hot: build a URL object only when there is a query string to read.
    const url =
      query < 0 ? { pathname: rawUrl, searchParams: new URLSearchParams() } : new URL(rawUrl, 'http://sim');
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    const raw = method === 'GET' || method === 'DELETE' ? '' : await readBody(req);
    let body: Record<string, unknown> = {};
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        return fail(res, { code: 100, details: 'The request body is not valid JSON' });
      }
    }
    if (parts[0] === '_sim') return control(parts.slice(1), method, url, body, res);
    const [version, node, edge] = parts;
    if (parts.length !== 3 || !/^v\d+\.\d+$/.test(version ?? ''))
      return json(res, 404, errorBody({ code: 100, details: `Unknown path ${url.pathname}` }, sim.traceId()));
    const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (edge === 'messages' && method === 'POST') {
      const result = sim.send(node!, body, token);
      if (result.ok)
        return json(res, 200, {
          messaging_product: 'whatsapp',
          contacts: [{ input: result.input, wa_id: result.waId }],
          messages: [{ id: result.wamid, message_status: 'accepted' }],
        });
      if (result.delayMs) await new Promise((r) => setTimeout(r, result.delayMs));
      return fail(res, result.error);
    }
    if (edge === 'block_users' && method === 'POST') {
      const users = ((body.block_users ?? []) as { user?: string }[]).map((u) => String(u.user ?? ''));
      const added = sim.blockUsers(node!, users);
      return json(res, 200, {
        messaging_product: 'whatsapp',
        block_users: { added_users: added.map((p, i) => ({ input: users[i], wa_id: p.slice(1) })) },
      });
    }
    if (edge === 'message_templates') {
      if (options.accessToken && token !== options.accessToken)
        return fail(res, { code: 190, details: 'The access token could not be decrypted' });
      const limited = sim.managementCall(node!);
      if (limited) return fail(res, limited);
      if (method === 'POST') {
        const created = sim.createTemplate(node!, body as unknown as MetaTemplateDefinition);
        if (!created.ok) return fail(res, created.error);
        return json(res, 200, {
          id: created.template.id,
          status: created.template.status,
          category: created.template.category,
        });
      }
      if (method === 'GET') {
        const list = sim.listTemplates(node!, {
          name: url.searchParams.get('name') ?? undefined,
          status: url.searchParams.get('status') ?? undefined,
        });
        return json(res, 200, {
          data: list.map(templateJson),
          paging: { cursors: { before: '', after: '' } },
        });
      }
      if (method === 'DELETE') {
        const name = url.searchParams.get('name');
        if (!name) return fail(res, { code: 100, details: 'name is required' });
        const deleted = sim.deleteTemplates(node!, name, url.searchParams.get('hsm_id') ?? undefined);
        if (!deleted) return fail(res, { code: 100, subcode: 2593002, details: `no template named ${name}` });
        return json(res, 200, { success: true });
      }
    }
    return json(
      res,
      404,
      errorBody({ code: 100, details: `Unsupported ${method} ${url.pathname}` }, sim.traceId()),
    );
  };

  const control = async (
    parts: string[],
    method: string,
    url: { searchParams: URLSearchParams },
    body: Record<string, unknown>,
    res: ServerResponse,
  ) => {
    const [what, id, action] = parts;
    if (what === 'log' && method === 'GET') {
      const since = Number(url.searchParams.get('since') ?? 0);
      const kind = url.searchParams.get('kind');
      return json(res, 200, {
        entries: sim.logSince(since, kind),
        counts: sim.counts,
        now: new Date(sim.now()).toISOString(),
      });
    }
    if (what === 'counts' && method === 'GET') return json(res, 200, sim.counts);
    if (what === 'stats' && method === 'GET') {
      const cpu = process.cpuUsage();
      return json(res, 200, {
        cpuMicros: cpu.user + cpu.system,
        rssBytes: process.memoryUsage().rss,
        pendingTasks: sim.clock.pending,
        logEntries: sim.logLength,
      });
    }
    if (what === 'faults' && method === 'POST') {
      sim.injectFault(body as unknown as Fault);
      return json(res, 200, { ok: true });
    }
    if (what === 'advance' && method === 'POST') {
      if (!sim.clock.manual) return json(res, 409, { error: 'the clock is not manual' });
      await sim.clock.advance(Number(body.ms ?? 0));
      return json(res, 200, { now: new Date(sim.now()).toISOString() });
    }
    if (what === 'inbound' && method === 'POST') {
      const wamid = sim.inbound(
        String(body.phone_number_id),
        String(body.from),
        String(body.text ?? ''),
        body.context_id as string | undefined,
      );
      return json(res, 200, { id: wamid });
    }
    if (what === 'numbers' && id && method === 'GET') {
      const state = sim.numberState(id);
      return state ? json(res, 200, state) : json(res, 404, { error: 'unknown number' });
    }
    if (what === 'numbers' && id && !action && method === 'POST') {
      // Declares a number up front (its throughput, portfolio, ...), as `numbers` does at start.
      if (sim.numberState(id)) return json(res, 409, { error: 'the number exists already' });
      const mps = body.throughputMps;
      if (mps !== undefined && !(Number.isInteger(mps) && (mps as number) >= 1 && (mps as number) <= 1000))
        return json(res, 400, { error: 'throughputMps must be an integer from 1 to 1000' });
      sim.number(id, {
        throughputMps: mps as number | undefined,
        portfolioId: typeof body.portfolioId === 'string' ? body.portfolioId : undefined,
        wabaId: typeof body.wabaId === 'string' ? body.wabaId : undefined,
        sharedWithBusinessApp: body.sharedWithBusinessApp === true,
      });
      return json(res, 200, sim.numberState(id));
    }
    if (what === 'numbers' && id && action === 'restrict' && method === 'POST') {
      sim.restrictNumber(id, (body.code as 368 | 131031 | null) ?? null);
      return json(res, 200, sim.numberState(id));
    }
    if (what === 'portfolios' && id && action === 'tier' && method === 'POST') {
      sim.setTier(id, body.tier as Tier);
      return json(res, 200, { ok: true });
    }
    if (what === 'templates' && id && action === 'status' && method === 'POST') {
      const t = sim.setTemplateStatus(
        id,
        String(body.status),
        body.reason as string | undefined,
        body.other_info as string | undefined,
      );
      return t ? json(res, 200, templateJson(t)) : json(res, 404, { error: 'unknown template' });
    }
    if (what === 'profiles' && id && method === 'GET') {
      const { readProbabilityAt: _f, ...profile } = sim.profile(id.startsWith('+') ? id : `+${id}`);
      return json(res, 200, profile);
    }
    return json(res, 404, { error: `unknown control ${parts.join('/')}` });
  };

  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) json(res, 500, errorBody({ code: 1, details: error.message }, sim.traceId()));
    });
  });
  server.keepAliveTimeout = 30_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    sim,
    get log() {
      return sim.log;
    },
    counts: sim.counts,
    now: () => new Date(sim.now()),
    advance: (ms) => sim.clock.advance(ms),
    settle: () => sim.clock.settle(),
    injectFault: (fault) => sim.injectFault(fault),
    async close() {
      sim.clock.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
