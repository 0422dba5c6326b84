/**
 * The operator's pages of the example panel.
 * @module
 */
import type { Page } from './app';

/** The operator's routes. */
export const operatorPages: { path: string; label: string; page: Page }[] = [];
