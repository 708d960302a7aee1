import { management, waitUntil } from './broker.js';

interface BrokerConnection {
  name: string;
  client_properties: { connection_name?: string };
}

/** Closes the broker-side connection whose client named itself `connectionName`, like a network cut. */
export async function closeConnection(connectionName: string): Promise<void> {
  let target: string | undefined;
  await waitUntil(
    `connection "${connectionName}" in the management API`,
    async () => {
      const all = await management<BrokerConnection[]>('/api/connections');
      target = all.find((c) => c.client_properties.connection_name === connectionName)?.name;
      return target !== undefined;
    },
    20_000,
  );
  await management(`/api/connections/${encodeURIComponent(target!)}`, { method: 'DELETE' });
}
