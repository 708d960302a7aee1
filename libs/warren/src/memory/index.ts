export { MemoryBroker, memoryBroker, type MemoryQueueInfo, type MemoryMessage } from './broker.js';
