export {
  WarrenServer,
  WARREN_TRANSPORT,
  DEFAULT_EVENTS_EXCHANGE,
  type WarrenServerOptions,
  type WarrenTransportOptions,
} from './warren-server.js';
export { WarrenClientProxy, type WarrenClientOptions } from './warren-client.proxy.js';
// It lives with Warren's other errors; the transport's apps import it from here, as they always have.
export { RemoteHandlerError } from '../warren.errors.js';
