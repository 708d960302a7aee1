export { MemoryBroker, memoryBroker, type MemoryQueueInfo } from './broker.js';
