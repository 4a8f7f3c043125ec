/**
 * The demo's WhatsApp simulator in a worker thread, so its HTTP server, message lifecycle and webhook
 * posts run on the other core instead of competing with dispatch, PGlite and the webhook inbox on the
 * main thread. Chorus reaches it over loopback HTTP exactly as it would reach Meta.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type StartSimulatorOptions, startSimulator } from '../simulator/server.ts';

export interface SimulatorThread {
  url: string;
  close(): Promise<void>;
}

type Reply = { type: 'ready'; url: string } | { type: 'error'; message: string };

/** Starts the simulator in a worker thread and resolves once it listens. */
export function startSimulatorThread(options: StartSimulatorOptions): Promise<SimulatorThread> {
  const worker = new Worker(new URL(import.meta.url), { workerData: options });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`simulator thread exited with code ${code}`)));
    worker.once('message', (reply: Reply) => {
      if (reply.type === 'error') {
        reject(new Error(reply.message));
        return;
      }
      worker.removeAllListeners('exit');
      resolve({
        url: reply.url,
        async close() {
          const exited = new Promise((done) => worker.once('exit', done));
          worker.postMessage('close');
          // a simulator that does not close in time (webhook posts hanging) is cut off
          const timer = setTimeout(() => void worker.terminate(), 5_000);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  try {
    const sim = await startSimulator(workerData as StartSimulatorOptions);
    port.on('message', async (message) => {
      if (message !== 'close') return;
      await sim.close().catch(() => {});
      process.exit(0); // ends this thread only, whatever webhook posts are still pending
    });
    port.postMessage({ type: 'ready', url: sim.url } satisfies Reply);
  } catch (error) {
    port.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
}
