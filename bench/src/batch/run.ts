// The batch scenario of `npm run bench` (`--batch`): a handler that takes one message per call
// against batch handlers of 10 and 100 messages, in Warren and in @golevelup/nestjs-rabbitmq
// (`batchOptions`, which its version 9 has), the same pub/sub for all.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrokerAdmin } from '../broker.js';
import { runPubsubMatrix } from '../side/pubsub-matrix.js';
import type { SideBench, SideContext } from '../side/side.js';
import { BATCH_LABELS, BATCH_TIMEOUT_MS, BATCH_VARIANTS, batchPrefetch, batchSizeOf } from './variants.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/batch

export async function runBatchBench(ctx: SideContext, admin: BrokerAdmin, n: number): Promise<SideBench> {
  const { trials, table, problems } = await runPubsubMatrix(
    {
      name: 'batch',
      variants: BATCH_VARIANTS,
      labels: BATCH_LABELS,
      reference: 'single',
      trialPath: join(here, 'trial.js'),
      n,
      spec: (variant, spec) => ({ ...spec, prefetch: batchPrefetch(spec.prefetch, batchSizeOf(variant)) }),
    },
    ctx,
    admin,
  );
  return {
    name: 'batch',
    title: `8. Batch handlers — ${n.toLocaleString('en-US')} persistent ~1 KB messages, as pub/sub, to a handler taking one message per call or a batch of 10 or 100`,
    table,
    notes: [
      `Each handler only records its messages. Prefetch ${ctx.prefetch}, or twice the batch size if higher, for every variant; a partial batch waits ${BATCH_TIMEOUT_MS} ms at most (Warren's timeoutMs, golevelup's timeout). × first = ÷ Warren with one message per call.`,
    ],
    problems,
    trials,
  };
}
