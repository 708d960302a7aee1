// The cluster scenario of `npm run bench` (`--cluster`, issue 14): pub/sub on a quorum queue
// against a classic one, Warren and raw amqplib, on a local 3-node cluster the bench starts with
// nestjs-warren/testing's startRabbitMQCluster (private nodes of the local rabbitmq-server, on
// 127.0.0.1) and closes at the end. Every trial connects to node 0.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRabbitMQCluster } from 'nestjs-warren/testing';
import { BrokerAdmin } from '../broker.js';
import { runPubsubMatrix } from '../side/pubsub-matrix.js';
import { closedOnInterrupt, type SideBench, type SideContext } from '../side/side.js';
import { CLUSTER_LABELS, CLUSTER_VARIANTS } from './variants.js';

const here = dirname(fileURLToPath(import.meta.url)); // bench/dist/src/cluster
const NODES = 3;

export async function runClusterBench(ctx: SideContext, n: number): Promise<SideBench> {
  const t0 = Date.now();
  console.log(`cluster: starting ${NODES} RabbitMQ nodes (startRabbitMQCluster)…`);
  // private: never the test suites' shared cluster, even when RABBITMQ_CLUSTER_DIR is set.
  const cluster = await startRabbitMQCluster({ nodes: NODES, private: true });
  const formedS = (Date.now() - t0) / 1000;
  console.log(`cluster: formed in ${formedS.toFixed(0)} s: ${cluster.nodes.map((node) => node.name).join(', ')}`);
  return closedOnInterrupt(
    cluster,
    (c) => c.close(),
    async () => {
      const admin = await BrokerAdmin.connect(cluster.urls[0], cluster.nodes[0].managementUrl);
      const broker = await admin.info();
      try {
        const { trials, table, problems } = await runPubsubMatrix(
          {
            name: 'cluster',
            variants: CLUSTER_VARIANTS,
            labels: CLUSTER_LABELS,
            reference: 'raw-classic',
            trialPath: join(here, 'trial.js'),
            n,
            beforeCleanup: async (trial, spec) => {
              const node = await cluster.nodeOf(spec.queue);
              trial.note = `queue on node ${node}`;
            },
          },
          { ...ctx, url: cluster.urls[0] },
          admin,
          cluster.urls[0],
        );
        const elsewhere = trials.filter((t) => t.note && t.note !== 'queue on node 0').length;
        return {
          name: 'cluster',
          title: `10. Cluster — ${n.toLocaleString('en-US')} persistent ~1 KB messages, as pub/sub, through a durable classic or quorum queue of a local ${NODES}-node cluster`,
          table,
          notes: [
            `RabbitMQ ${broker.version}${broker.erlang ? ` (Erlang ${broker.erlang})` : ''}, ${NODES} nodes on this machine (startRabbitMQCluster, formed in ${formedS.toFixed(0)} s). ` +
              `Every client connects to node 0; the queue (a classic queue, or the quorum queue's leader) was on node 0 in ${trials.length - elsewhere} of ${trials.length} trials` +
              `${elsewhere ? ` (elsewhere in ${elsewhere}: its messages cross to node 0 and back)` : ''}; a quorum queue replicates each message to the 2 other nodes before the confirm. × first = ÷ raw amqplib on a classic queue.`,
          ],
          problems,
          trials,
          meta: { broker, nodes: cluster.nodes.map((node) => node.name), formedSeconds: formedS },
        };
      } finally {
        await admin.close();
      }
    },
  );
}
