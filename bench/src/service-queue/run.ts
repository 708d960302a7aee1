// The service-queue scenario of `npm run bench` (`--service-queue`): eight handlers dispatched by
// routing key from one service queue against eight queues with one handler each.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrokerAdmin } from '../broker.js';
import { runPubsubMatrix } from '../side/pubsub-matrix.js';
import type { SideBench, SideContext } from '../side/side.js';
import { HANDLERS, prefetchOf, SERVICE_QUEUE_LABELS, SERVICE_QUEUE_VARIANTS } from './variants.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/service-queue

export async function runServiceQueueBench(ctx: SideContext, admin: BrokerAdmin, n: number): Promise<SideBench> {
  const { trials, table, problems } = await runPubsubMatrix(
    {
      name: 'service-queue',
      variants: SERVICE_QUEUE_VARIANTS,
      labels: SERVICE_QUEUE_LABELS,
      reference: 'eight-queues',
      trialPath: join(here, 'trial.js'),
      n,
      // The eight queues are the harness's handler queues, which the clean-up deletes.
      spec: (variant, spec) => ({
        ...spec,
        handlers: variant === 'service-queue' ? 0 : HANDLERS,
        prefetch: prefetchOf(variant, spec.prefetch),
      }),
      mustBeZero: { misrouted: 'message(s) reached the wrong handler' },
    },
    ctx,
    admin,
  );
  return {
    name: 'service-queue',
    title: `9. Service queue — ${n.toLocaleString('en-US')} persistent ~1 KB messages round robin over ${HANDLERS} routing keys, a handler per key: ${HANDLERS} queues, or one queue dispatching by routing key`,
    table,
    notes: [
      `Prefetch ${ctx.prefetch} per consumer: the ${HANDLERS} queues have ${HANDLERS} consumers (up to ${HANDLERS * ctx.prefetch} messages unacked at once), the service queue one; "the prefetch split" gives each of the ${HANDLERS} consumers ${prefetchOf('eight-queues-split', ctx.prefetch)}, about as many in flight in all as the service queue. Every handler checked that it got only its own routing key's messages. × first = ÷ the ${HANDLERS} queues.`,
    ],
    problems,
    trials,
  };
}
