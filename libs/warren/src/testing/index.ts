export { startRabbitMQ, type RabbitMQ, type StartRabbitMQOptions } from './start-rabbitmq.js';
export { freePort } from './free-port.js';
export { MessageLog } from './message-log.js';
export {
  recordHandled,
  recordPublished,
  resetDeclaredTopology,
  type CapturedMessage,
  type RecordHandledOptions,
} from './app-probes.js';
