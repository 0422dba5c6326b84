export * from './actor';
export * from './images';
export * from './catalog';
export * from './storages';
export * from './settings';
export * from './usage';
export * from './recovery';
export type { Logger, ServiceSettings } from './context';
export type { WorkProgress } from './task-runner';
