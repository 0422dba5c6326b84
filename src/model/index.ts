export * from './common';
export * from './image';
export * from './image-storage';
export * from './media-group';
export * from './iso';
export * from './task';
export * from './usage-interval';
export * from './settings';
