import * as warren from './index.js';

// The public API is chosen name by name: a helper that reaches it by accident (an `export *`)
// would be one more name users come to depend on.
describe("nestjs-warren's public API", () => {
  it('exports exactly the values users need, and no internal helper', () => {
    expect(Object.keys(warren).sort()).toEqual(
      [
        'ATTEMPT_HEADER',
        'Consume',
        'ConsumerRegistry',
        'Ctx',
        'DEFAULT_RETRY_DELAYS',
        'DIRECT_REPLY_TO',
        'FAILURE_HEADERS',
        'Header',
        'InMemoryStreamOffsetStore',
        'InjectConsumerRegistry',
        'InjectPublisher',
        'InjectRpcClient',
        'MessageDecodeError',
        'Payload',
        'PayloadValidationError',
        'PoisonMessageError',
        'PublishError',
        'Publisher',
        'RPC_ERROR_HEADER',
        'RemoteHandlerError',
        'RpcChannelLostError',
        'RpcClient',
        'RpcClientClosedError',
        'RpcHandler',
        'RpcNoRouteError',
        'RpcRemoteError',
        'RpcTimeoutError',
        'Subscribe',
        'TopologyError',
        'WARREN_MODULE_OPTIONS',
        'WarrenConfigurationError',
        'WarrenConnection',
        'WarrenConnectionError',
        'WarrenContext',
        'WarrenDecoratorError',
        'WarrenError',
        'WarrenHealthIndicator',
        'WarrenModule',
        'bindingKeyProblem',
        'defineEvent',
        'defineRpc',
        'getWarrenToken',
        'redactCredentials',
        'retryQueueName',
        'routingKeyProblem',
        'topicMatches',
      ].sort(),
    );
  });
});
