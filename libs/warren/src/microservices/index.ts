export {
  WarrenServer,
  WARREN_TRANSPORT,
  DEFAULT_EVENTS_EXCHANGE,
  RemoteHandlerError,
  type WarrenServerOptions,
  type WarrenTransportOptions,
} from './warren-server.js';
export { WarrenClientProxy, type WarrenClientOptions } from './warren-client.proxy.js';
