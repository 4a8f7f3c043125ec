// Send-time model: quality on a simulated population (the simulator's recipients, 90 days of
// exploration sends) and fit time at scale. `--size small` (default): 2,000 contacts for quality,
// 20,000 contacts x 30 sends for fit time. `--size full`: 100,000 contacts for quality, 1,000,000
// contacts x 30 sends (30M sends, 90 days) for fit time (goal: at most 60 s).
// `--part quality|fit` runs one half. `--data DIR` keeps the stores in DIR and reuses the data a
// previous run generated there; `--generate-only` writes the data and stops, so the big data sets
// can be made outside the bench lock and only the timed part run under it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { openRuntime } from '../engine/runtime.ts';
import { planSendTimes } from '../engine/sto/chooser.ts';
import { buildPolicies, evaluateSendTime, POLICIES } from '../engine/sto/evaluate.ts';
import { fitSendTime, latestFit } from '../engine/sto/fit.ts';
import { loadHistories, loadModel } from '../engine/sto/model.ts';
import { simulatedPopulation, trueReadRate, writeSimulatedHistory } from '../engine/sto/simulation.ts';
import { candidatesFor, hourOfSlot } from '../engine/sto/slots.ts';
import { createWorkspace } from '../engine/workspaces.ts';

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const size = option('--size') === 'full' ? 'full' : 'small';
const part = option('--part') ?? 'all';
const generateOnly = args.includes('--generate-only');
const POPULATION = size === 'full' ? 100_000 : 2_000;
const FIT_CONTACTS = size === 'full' ? 1_000_000 : 20_000;
const SENDS_PER_CONTACT = 30;
const until = new Date('2026-06-01T00:00:00Z');
const quietHours = { start: 21, end: 8 };

const keptDir = option('--data');
const dataDir = keptDir ? resolve(keptDir, size) : mkdtempSync(join(tmpdir(), 'chorus-bench-'));
mkdirSync(dataDir, { recursive: true });
// which workspaces of a kept data directory already hold generated data
const statePath = join(dataDir, 'sto-bench-state.json');
const state: { quality?: string; scale?: string; generated?: Record<string, unknown> } = existsSync(statePath)
  ? JSON.parse(readFileSync(statePath, 'utf8'))
  : {};
const saveState = () => keptDir && writeFileSync(statePath, JSON.stringify(state));
const runtime = await openRuntime({ config: { dataDir, logLevel: 'warn' }, log: pino({ level: 'warn' }) });
const seconds = (from: number) => Math.round((performance.now() - from) / 10) / 100;
const cpuSeconds = (from: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(from);
  return Math.round((used.user + used.system) / 10_000) / 100;
};
const resultsPath = new URL(`./results/sto${part === 'all' ? '' : `-${part}`}.json`, import.meta.url);
const results: Record<string, unknown> = {
  size,
  part,
  machine: { cpus: cpus().length, memory_gb: Math.round(totalmem() / 2 ** 30), load_at_start: loadavg() },
};

/** Quality: fit on the simulated history, plan a day, score every policy by the true read rates. */
async function quality() {
  const population = simulatedPopulation('sto-bench', POPULATION);
  let t = performance.now();
  let ws = state.quality;
  if (!ws) {
    ws = (await createWorkspace(runtime.pg, { name: 'STO quality' })).id;
    const history = await writeSimulatedHistory(runtime, population, {
      workspaceId: ws,
      until,
      days: 90,
      sendChance: 0.8,
      quietHours,
      seed: 'sto-bench',
    });
    state.quality = ws;
    state.generated = {
      ...state.generated,
      history: { contacts: population.length, ...history, seconds: seconds(t) },
    };
    saveState();
  }
  results.history = state.generated?.history;
  if (generateOnly) return;
  t = performance.now();
  const cpu = process.cpuUsage();
  const fit = await fitSendTime(runtime, ws, { until });
  results.quality_fit = {
    contacts: fit.contacts,
    sends: fit.sends,
    kappa_contact: fit.kappaContact,
    seconds: seconds(t),
    cpu_seconds: cpuSeconds(cpu),
  };
  const window = { start: new Date('2026-06-03T00:00:00Z'), end: new Date('2026-06-04T00:00:00Z') };
  const contacts = population.map((c) => ({
    id: c.id,
    timezone: c.profile.timezone,
    country: c.profile.country,
  }));
  t = performance.now();
  const plan = await planSendTimes(runtime, {
    workspaceId: ws,
    window,
    contacts,
    quietHours,
    explorationShare: 0,
  });
  results.plan = { contacts: contacts.length, seconds: seconds(t) };
  const record = await latestFit(runtime, ws);
  const model = await loadModel(runtime, record);
  const histories = await loadHistories(
    runtime,
    record,
    contacts.map((c) => c.id),
  );
  const byId = new Map(contacts.map((c) => [c.id, c]));
  const policies = buildPolicies(model, histories, (id) => ({
    timezone: byId.get(id)!.timezone,
    country: byId.get(id)!.country,
  }));
  const totals: Record<string, number> = { oracle: 0, chosen: 0 };
  for (const name of POLICIES) totals[name] = 0;
  const zones = new Map<string, ReturnType<typeof candidatesFor>>();
  plan.details.forEach((d, i) => {
    const profile = population[i]!.profile;
    let candidates = zones.get(d.timezone);
    if (!candidates) {
      candidates = candidatesFor(d.timezone, window, quietHours);
      zones.set(d.timezone, candidates);
    }
    const truth = candidates.map((c) => trueReadRate(profile, c.at));
    totals.oracle! += Math.max(...truth);
    totals.chosen! += trueReadRate(profile, d.plan!.at);
    const slots = [...new Set(candidates.map((c) => c.slot))];
    for (const name of POLICIES) {
      const slot = policies[name](d.contactId, slots);
      totals[name]! +=
        slot === null
          ? truth.reduce((a, b) => a + b, 0) / truth.length
          : truth[candidates.findIndex((c) => c.slot === slot)]!;
    }
  });
  const rates = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v / population.length]));
  results.true_engagement = { ...rates, ratio_to_oracle: rates.chosen! / rates.oracle! };
  process.stdout.write(
    `${JSON.stringify({ history: results.history, quality_fit: results.quality_fit, true_engagement: results.true_engagement }, null, 1)}\n`,
  );
  t = performance.now();
  const {
    fit: _f,
    choices,
    ...evaluation
  } = await evaluateSendTime(runtime, ws, {
    until,
    testDays: 14,
    quietHours,
    bootstrap: 300,
    keepChoices: true,
  });
  // the measured truth the estimates are judged by: each policy's true read rate on the test contexts
  const profiles = new Map(population.map((c) => [c.id, c.profile]));
  const truth = Object.fromEntries(
    POLICIES.filter((name) => name !== 'random').map((name) => {
      const i = POLICIES.indexOf(name);
      let sum = 0;
      for (const { send, slots } of choices!)
        sum += profiles.get(send.contact_id)!.readProbabilityAt(hourOfSlot(slots[i]!), send.local_weekday);
      const ips = evaluation.policies[i]!.ips;
      const snips = evaluation.policies[i]!.snips;
      const rate = sum / choices!.length;
      const inside = (ci: [number, number] | null) => ci !== null && rate >= ci[0] && rate <= ci[1];
      return [name, { truth: rate, in_ips_interval: inside(ips.ci), in_snips_interval: inside(snips.ci) }];
    }),
  );
  results.evaluation = {
    seconds: seconds(t),
    test: evaluation.test,
    policies: evaluation.policies,
    lifts: evaluation.lifts,
    truth_on_test_contexts: truth,
  };
  process.stdout.write(`${JSON.stringify({ truth_on_test_contexts: truth })}\n`);
}

/** Fit time at scale: synthetic sends and reads written inside ClickHouse, then timed fits. */
async function scale() {
  const db = runtime.ch.database;
  const total = FIT_CONTACTS * SENDS_PER_CONTACT;
  let big = state.scale;
  if (!big) {
    big = (await createWorkspace(runtime.pg, { name: 'STO scale' })).id;
    const t = performance.now();
    await runtime.ch.command(
      `INSERT INTO ${db}.sends (workspace_id, send_id, contact_id, country, timezone, provider_message_id, outcome, sent_at, exploration, propensity)
       SELECT {ws:String}, concat('b', toString(number)), concat('c', toString(number % {contacts:UInt64})),
         ['IN', 'BR', 'US', 'ID', 'GB'][(number % {contacts:UInt64}) % 5 + 1],
         ['Asia/Kolkata', 'America/Sao_Paulo', 'America/New_York', 'Asia/Jakarta', 'Europe/London'][(number % {contacts:UInt64}) % 5 + 1],
         concat('m', toString(number)), 'accepted',
         subtractSeconds({until:DateTime64(3)}, cityHash64(number, 1) % (90 * 86400)), 1, 1 / 13
       FROM numbers({total:UInt64})`,
      {
        ws: big,
        contacts: FIT_CONTACTS,
        total,
        until: until.toISOString().replace('T', ' ').replace('Z', ''),
      },
    );
    await runtime.ch.command(
      `INSERT INTO ${db}.message_statuses (workspace_id, provider_message_id, status, ts)
       SELECT workspace_id, provider_message_id, 'read', addSeconds(sent_at, 600)
       FROM ${db}.sends WHERE workspace_id = {ws:String} AND cityHash64(send_id) % 100 < 40`,
      { ws: big },
    );
    await runtime.ch.command(`OPTIMIZE TABLE ${db}.sends FINAL`);
    state.scale = big;
    state.generated = {
      ...state.generated,
      scale: { contacts: FIT_CONTACTS, sends: total, seconds_to_generate: seconds(t) },
    };
    saveState();
  }
  results.scale_data = state.generated?.scale;
  if (generateOnly) return;
  const fits: { seconds: number; cpu_seconds: number; steps: Record<string, number> }[] = [];
  for (let run = 0; run < (size === 'full' ? 2 : 3); run++) {
    const t = performance.now();
    const cpu = process.cpuUsage();
    // each step's wall time, from its progress call to the next ('contact prior' includes bookkeeping)
    const steps: Record<string, number> = {};
    let current = 'setup';
    let step = t;
    const r = await fitSendTime(runtime, big, {
      until,
      onProgress: (name) => {
        steps[current] = seconds(step);
        current = name;
        step = performance.now();
      },
    });
    steps[current] = seconds(step);
    fits.push({ seconds: seconds(t), cpu_seconds: cpuSeconds(cpu), steps });
    results.scale_fit = { contacts: r.contacts, sends: r.sends, runs: fits };
  }
  process.stdout.write(
    `${JSON.stringify({ scale_data: results.scale_data, scale_fit: results.scale_fit })}\n`,
  );
}

try {
  if (part === 'all' || part === 'quality') await quality();
  if (part === 'all' || part === 'fit') await scale();
  results.load_at_end = loadavg();
} finally {
  await runtime.close();
  if (!keptDir) rmSync(dataDir, { recursive: true, force: true });
}
if (!generateOnly) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(resultsPath, JSON.stringify(results, null, 2));
  process.stdout.write(`results in ${resultsPath.pathname}\n`);
}
