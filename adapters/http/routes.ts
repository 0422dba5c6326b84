/**
 * The route table: every route of the images API, customer and admin. The handler and the
 * OpenAPI document are both built from it, so neither can forget a route.
 * @module
 */
import { HOST_HOOK_ROUTES } from './account-routes';
import { MOVE_ROUTES } from './move-routes';
import type { RouteDefinition } from './route-types';
import { ADMIN_ROUTES } from './routes-admin';
import { CUSTOMER_ROUTES } from './routes-customer';
import { IMAGE_METADATA_ROUTES } from './routes-image-metadata';
import { MOVING_ROUTES } from './routes-moving';

export { ADMIN_ROUTES } from './routes-admin';
export { CUSTOMER_ROUTES } from './routes-customer';

/** Every route of the images API, in matching order. */
export const IMAGES_ROUTES: readonly RouteDefinition[] = [
  ...CUSTOMER_ROUTES,
  ...IMAGE_METADATA_ROUTES,
  ...MOVE_ROUTES,
  ...MOVING_ROUTES,
  ...ADMIN_ROUTES,
  ...HOST_HOOK_ROUTES,
];
