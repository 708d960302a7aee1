import { WarrenModule, type WarrenModuleOptions } from 'nestjs-warren';

/** The broker every program talks to: RABBITMQ_URL, or the tutorials' localhost default. */
export function brokerUrl(): string {
  return process.env.RABBITMQ_URL ?? 'amqp://localhost';
}

export function warren(options: Partial<WarrenModuleOptions> = {}) {
  return WarrenModule.forRoot({ url: brokerUrl(), connectionName: 'warren-tutorial', ...options });
}
