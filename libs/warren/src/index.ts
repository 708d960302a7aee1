// The public API, name by name: everything else in the library is internal and may change.
export { WarrenModule } from './warren.module.js';
export { getWarrenToken, InjectPublisher, InjectRpcClient, InjectConsumerRegistry } from './warren.tokens.js';
export {
  WARREN_MODULE_OPTIONS,
  type WarrenModuleOptions,
  type WarrenModuleAsyncOptions,
  type WarrenOptionsFactory,
  type WarrenTopologyOptions,
  type WarrenTlsOptions,
  type WarrenHandlerConfig,
  type StreamOffsetStore,
} from './warren.options.js';
export { InMemoryStreamOffsetStore } from './consumer/stream-offsets.js';
export type { QueueType, Overflow, StreamOffset, TypedQueueOptions } from './topology/amqp-rules.js';
export {
  WarrenError,
  WarrenDecoratorError,
  TopologyError,
  WarrenConfigurationError,
  WarrenConnectionError,
  PublishError,
  UnroutableError,
  PoisonMessageError,
  MessageDecodeError,
  UnsupportedContentTypeError,
  PayloadValidationError,
  NoHandlerError,
  RemoteHandlerError,
} from './warren.errors.js';
export { Subscribe, type SubscribeOptions, type ConfiguredSubscribe } from './decorators/subscribe.decorator.js';
export { Consume, type ConsumeOptions, type ConfiguredConsume } from './decorators/consume.decorator.js';
export {
  RpcHandler,
  type RpcHandlerOptions,
  type RpcSource,
  type ConfiguredRpcHandler,
} from './decorators/rpc-handler.decorator.js';
export { Payload, Ctx, Header } from './decorators/payload.decorator.js';
export type { ConnectionOption } from './decorators/handler-metadata.js';
export { Publisher, type PublishOptions } from './publisher/publisher.js';
export { RpcClient, type RpcCallOptions, DIRECT_REPLY_TO } from './rpc/rpc-client.js';
export { defineRpc, defineEvent, type RpcContract, type EventContract } from './contracts/contracts.js';
export {
  RpcTimeoutError,
  RpcRemoteError,
  RpcNoRouteError,
  RpcChannelLostError,
  RpcClientClosedError,
  RpcUnavailableError,
} from './rpc/rpc-errors.js';
export { RPC_ERROR_HEADER, type RpcErrorBody } from './rpc/rpc-wire.js';
export { RpcRemoteErrorFilter } from './rpc/rpc-remote-error.filter.js';
export { ConsumerRegistry, type ConsumerHandle } from './registry/consumer-registry.js';
export type { WarrenTopology, ConnectionTopology, HandlerTopology, HandlerAbout } from './registry/topology-view.js';
export { describeTopology, bootWithoutBroker, type BootWithoutBrokerOptions } from './discovery/topology-reader.js';
export { WarrenContext } from './consumer/warren-context.js';
export { BatchContext } from './consumer/batch-context.js';
export type { BatchOptions } from './topology/batch.js';
export type { Handler } from './consumer/handler-invoker.js';
export {
  WarrenConnection,
  type ConnectionRole,
  type ConnectionEvent,
  type ConnectionEvents,
} from './connection/warren-connection.js';
export {
  WarrenHealthIndicator,
  type WarrenHealthDetails,
  type WarrenConnectionHealth,
  type WarrenHealthResult,
} from './health/warren-health.indicator.js';
export { redactCredentials } from './connection/redact.js';
export { topicMatches, bindingKeyProblem, routingKeyProblem } from './topology/binding-key.js';
export type { ExchangeType, ExchangeDeclaration, QueueDeclaration, BindingDeclaration } from './topology/topology.js';
export {
  type FailureMode,
  type FailureOptions,
  DEFAULT_RETRY_DELAYS,
  ATTEMPT_HEADER,
  FAILURE_HEADERS,
  retryQueueName,
} from './topology/failure-policy.js';
export { DELAY_HEADERS } from './topology/delay-ladder.js';
export type { StandardSchemaV1 } from './validation/standard-schema.js';
export type { WarrenCodec } from './codec/codecs.js';
export { msgpackCodec, MSGPACK_CONTENT_TYPE, type MessagePackr } from './codec/msgpack-codec.js';
export type { HandledMessage } from './consumer/message-consumer.js';
export type { PublishedMessage } from './publisher/publisher.js';
