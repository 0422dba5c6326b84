export type * from './repositories';
export type * from './host-directory';
export type * from './executor';
export type * from './storage-driver';
export type * from './hypervisor-driver';
export type * from './task-queue';
export type * from './logger';
