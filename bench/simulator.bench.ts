// Requests per second the simulator sustains on loopback: template sends over keep-alive HTTP
// (node:http Agent) with 64 requests in flight, spread over numbers and recipients so the answers are
// acceptances (the path dispatch exercises), not limit errors. The simulator runs in its own process,
// as `chorus sim` does, and reports its CPU time, so the figure per CPU-second holds on a shared
// machine. Goal: >= 5,000/s, so the simulator never limits a dispatch benchmark.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { startSimulatorProcess } from './sim-process.ts';

const args = process.argv.slice(2);
const size = args[args.indexOf('--size') + 1] === 'full' ? 'full' : 'small';
const requests = size === 'full' ? 200_000 : 10_000;
const concurrency = 64;
const numbers = 32;

const templates = [
  {
    name: 'bench_update',
    language: 'en_US',
    category: 'UTILITY',
    components: [
      {
        type: 'BODY',
        text: 'Hello {{1}}, your order {{2}} ships today.',
        example: { body_text: [['A', 'B']] },
      },
    ],
  },
];
const templatesFile = '/tmp/chorus-bench-templates.json';
writeFileSync(templatesFile, JSON.stringify(templates));

// The simulator in its own process, started the way users start it.
const simulator = await startSimulatorProcess([
  '--seed',
  'bench',
  '--throughput',
  '1000',
  '--templates',
  templatesFile,
]);
const url = simulator.url;

const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const target = { hostname: new URL(url).hostname, port: new URL(url).port };

function call(method: string, path: string, payload?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: 'Bearer bench' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const req = request(
      { agent, hostname: target.hostname, port: target.port, path, method, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const body = (i: number) =>
  JSON.stringify({
    messaging_product: 'whatsapp',
    to: `91${String(9_000_000_000 + i)}`,
    type: 'template',
    biz_opaque_callback_data: `send_${i}`,
    template: {
      name: 'bench_update',
      language: { code: 'en_US' },
      components: [
        {
          type: 'body',
          parameters: [
            { type: 'text', text: 'Asha' },
            { type: 'text', text: `A-${i}` },
          ],
        },
      ],
    },
  });

// Whichever server `target` points at (the simulator, or the bare baseline) reports its own CPU.
const serverCpu = async () => JSON.parse((await call('GET', '/_sim/stats')).body).cpuMicros as number;

async function run(total: number, offset: number) {
  let next = 0;
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const started = performance.now();
      const { status } = await call('POST', `/v23.0/${1000 + (i % numbers)}/messages`, body(offset + i));
      latencies.push(performance.now() - started);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  const cpuBefore = await serverCpu();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const serverCpuSeconds = ((await serverCpu()) - cpuBefore) / 1e6;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number(latencies[Math.floor(q * (latencies.length - 1))]!.toFixed(2));
  return {
    requests: total,
    seconds: Number(seconds.toFixed(3)),
    rps: Math.round(total / seconds),
    serverCpuSeconds: Number(serverCpuSeconds.toFixed(3)),
    // Load-independent: what one free core running the simulator sustains.
    rpsPerServerCpuSecond: Math.round(total / serverCpuSeconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    statuses,
  };
}

/** The same client against a bare Node http server that answers a fixed acceptance: the ceiling of
 * Node's HTTP on this machine right now, so the simulator's figure can be read on a loaded machine. */
async function baseline(total: number) {
  const script = `const http=require('node:http');const body=JSON.stringify({messaging_product:'whatsapp',contacts:[{input:'1',wa_id:'1'}],messages:[{id:'wamid.x',message_status:'accepted'}]});
    const s=http.createServer({keepAlive:true},(req,res)=>{if(req.url==='/_sim/stats'){const c=process.cpuUsage();res.end(JSON.stringify({cpuMicros:c.user+c.system}));return;}const chunks=[];req.on('data',c=>chunks.push(c));req.on('end',()=>{JSON.parse(Buffer.concat(chunks));res.writeHead(200,{'content-type':'application/json','content-length':Buffer.byteLength(body)});res.end(body);});});
    s.listen(0,'127.0.0.1',()=>console.log(JSON.stringify({url:'http://127.0.0.1:'+s.address().port})));`;
  const bare = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bareUrl = await new Promise<string>((resolve) => {
    bare.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()).url));
  });
  const saved = target.port;
  target.port = new URL(bareUrl).port;
  try {
    await run(Math.min(2_000, total), 30_000_000);
    return await run(total, 40_000_000);
  } finally {
    target.port = saved;
    bare.kill('SIGTERM');
  }
}

const loadBefore = loadavg()[0]!;
try {
  await run(Math.min(2_000, requests), 10_000_000); // warm-up: JIT, connections
  const result = await run(requests, 0);
  const bare = await baseline(requests);
  const report = {
    name: 'simulator',
    size,
    concurrency,
    numbers,
    machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    loadAverage: { before: loadBefore, after: loadavg()[0] },
    ...result,
    bareNodeServer: { rps: bare.rps, rpsPerServerCpuSecond: bare.rpsPerServerCpuSecond, p50Ms: bare.p50Ms },
    goalRps: 5_000,
    meetsGoal: result.rps >= 5_000,
    at: new Date().toISOString(),
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/simulator.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  agent.destroy();
  simulator.stop();
}
