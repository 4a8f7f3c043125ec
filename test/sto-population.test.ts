import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planSendTimes } from '../engine/sto/chooser.ts';
import { buildPolicies, evaluateSendTime, POLICIES, type PolicyName } from '../engine/sto/evaluate.ts';
import { fitSendTime, latestFit } from '../engine/sto/fit.ts';
import { loadHistories, loadModel } from '../engine/sto/model.ts';
import {
  type SimulatedContact,
  simulatedPopulation,
  trueReadRate,
  writeSimulatedHistory,
} from '../engine/sto/simulation.ts';
import { hourOfSlot } from '../engine/sto/slots.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';

// A population with known preferred hours (the simulator's seeded recipients) and 90 days of
// exploration sends whose outcomes are drawn from each recipient's true read probability.
const SIZE = Number(process.env.STO_POPULATION ?? 1500);
const until = new Date('2026-06-01T00:00:00Z');
const quietHours = { start: 21, end: 8 };

describe(`send-time model on a simulated population of ${SIZE}`, () => {
  let runtime: TestRuntime;
  let ws: string;
  let population: SimulatedContact[];

  beforeAll(async () => {
    runtime = await openTestRuntime();
    ws = (await createWorkspace(runtime.pg, { name: 'Population' })).id;
    population = simulatedPopulation('sto-ci', SIZE);
    const started = performance.now();
    await writeSimulatedHistory(runtime, population, {
      workspaceId: ws,
      until,
      days: 90,
      sendChance: 0.8,
      quietHours,
      seed: 'sto-ci',
    });
    console.log('history written in', ((performance.now() - started) / 1000).toFixed(1), 's');
  });
  afterAll(async () => runtime?.close());

  it('engages at >= 90% of the oracle and above every baseline at the chosen hours', async () => {
    await fitSendTime(runtime, ws, { until });
    const window = { start: new Date('2026-06-03T00:00:00Z'), end: new Date('2026-06-04T00:00:00Z') };
    const contacts = population.map((c) => ({
      id: c.id,
      timezone: c.profile.timezone,
      country: c.profile.country,
    }));
    const plan = await planSendTimes(runtime, {
      workspaceId: ws,
      window,
      contacts,
      quietHours,
      explorationShare: 0,
    });
    const fit = await latestFit(runtime, ws);
    const model = await loadModel(runtime, fit);
    const histories = await loadHistories(
      runtime,
      fit,
      contacts.map((c) => c.id),
    );
    const byId = new Map(contacts.map((c) => [c.id, c]));
    const policies = buildPolicies(model, histories, (id) => ({
      timezone: byId.get(id)!.timezone,
      country: byId.get(id)!.country,
    }));
    const detail = new Map(plan.details.map((d) => [d.contactId, d]));
    const totals: Record<string, number> = { oracle: 0, chosen: 0 };
    for (const name of POLICIES) totals[name] = 0;
    for (const contact of population) {
      const d = detail.get(contact.id)!;
      const candidates = d.plan ? candidatesOf(d) : [];
      expect(candidates.length).toBeGreaterThan(0);
      const truth = candidates.map((c) => trueReadRate(contact.profile, c.at));
      totals.oracle! += Math.max(...truth);
      totals.chosen! += trueReadRate(contact.profile, d.plan!.at);
      const slots = [...new Set(candidates.map((c) => c.slot))];
      for (const name of POLICIES) {
        const slot = policies[name](contact.id, slots);
        totals[name]! += slot === null ? mean(truth) : truth[candidates.findIndex((c) => c.slot === slot)]!;
      }
    }
    const rate = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v / population.length]));
    console.log('true engagement at the chosen hours', rate);
    expect(rate.chosen).toBeCloseTo(rate.model!, 10); // the chooser is the model policy
    expect(rate.chosen! / rate.oracle!).toBeGreaterThanOrEqual(0.9);
    for (const baseline of POLICIES.filter((p) => p !== 'model'))
      expect(rate.chosen).toBeGreaterThan(rate[baseline]!);

    // the candidate times a plan chose among, recomputed the way the chooser does
    function candidatesOf(d: (typeof plan.details)[number]) {
      return candidateCache(d.timezone, window);
    }
  });

  it('offline evaluation: the IPS interval holds the true rate of the model policy, and the model beats the baselines', async () => {
    const report = await evaluateSendTime(runtime, ws, {
      until,
      testDays: 14,
      quietHours,
      keepChoices: true,
      bootstrap: 300,
    });
    console.log(
      JSON.stringify({ test: report.test, policies: report.policies, lifts: report.lifts }, null, 1),
    );
    const byContact = new Map(population.map((c) => [c.id, c.profile]));
    for (const [i, name] of POLICIES.entries()) {
      if (name === 'random') continue;
      const truth = mean(
        report.choices!.map(({ send, slots }) =>
          byContact.get(send.contact_id)!.readProbabilityAt(hourOfSlot(slots[i]!), send.local_weekday),
        ),
      );
      const estimate = report.policies[i]!;
      const [lo, hi] = estimate.ips.ci!;
      console.log(name, 'truth', truth.toFixed(4), 'ips', estimate.ips.estimate?.toFixed(4), [
        lo.toFixed(4),
        hi.toFixed(4),
      ]);
      if (name === 'model') {
        expect(truth).toBeGreaterThanOrEqual(lo);
        expect(truth).toBeLessThanOrEqual(hi);
        const [slo, shi] = estimate.snips.ci!;
        expect(truth).toBeGreaterThanOrEqual(slo);
        expect(truth).toBeLessThanOrEqual(shi);
      }
    }
    for (const lift of report.lifts) {
      expect(lift.lift).toBeGreaterThan(0);
      if (lift.baseline === 'random' || lift.baseline === 'global_best')
        expect(lift.ci![0]).toBeGreaterThan(0);
    }
    // the evaluation's training fit does not replace the serving fit
    const serving = await latestFit(runtime, ws);
    expect(serving?.id).not.toBe(report.fit.fitId);
    const _unused: PolicyName = 'model';
    void _unused;
  });
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

import { candidatesFor } from '../engine/sto/slots.ts';

const cache = new Map<string, ReturnType<typeof candidatesFor>>();
function candidateCache(zone: string, window: { start: Date; end: Date }) {
  let c = cache.get(zone);
  if (!c) {
    c = candidatesFor(zone, window, quietHours);
    cache.set(zone, c);
  }
  return c;
}
