export { startRabbitMQ, type RabbitMQ, type StartRabbitMQOptions } from './start-rabbitmq.js';
export { freePort } from './free-port.js';
