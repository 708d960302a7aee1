/**
 * Attribute names: OpenTelemetry's messaging semantic conventions where they have one (read from
 * semantic-conventions 1.3x, whose messaging part is still in development), `warren.*` otherwise.
 */
export const ATTR = {
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  routingKey: 'messaging.rabbitmq.destination.routing_key',
  deliveryTag: 'messaging.rabbitmq.message.delivery_tag',
  messageId: 'messaging.message.id',
  conversationId: 'messaging.message.conversation_id',
  bodySize: 'messaging.message.body.size',
  /** On a batch's span: how many messages it processes. */
  batchCount: 'messaging.batch.message_count',
  /** The queue a delivery came from: its consumers compete for its messages, as a group's do. */
  consumerGroup: 'messaging.consumer.group.name',
  errorType: 'error.type',
  handler: 'warren.handler',
  outcome: 'warren.outcome',
  deadLetterReason: 'warren.dead_letter.reason',
  attempt: 'warren.attempt',
  rpcOutcome: 'warren.rpc.outcome',
  connection: 'warren.connection',
  role: 'warren.connection.role',
} as const;

export const RABBITMQ = 'rabbitmq';
