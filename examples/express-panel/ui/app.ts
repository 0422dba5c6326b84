/**
 * The example panel's UI: a small single-page app on the typed client. Routes are URL hashes
 * (`#/images`, `#/admin/storages`, ...); the session is the page's query (`?account=` or
 * `?admin=yes`). Each page renders into `<main>`; navigating moves the focus to the new page's
 * heading so keyboard and screen-reader users land on it.
 * @module
 */
import { errorBox, h } from './dom';
import { myImagesPage } from './my-images';
import { operatorPages } from './operator';
import { pickerPage } from './picker';
import { createContext, sessionFromUrl, type AppContext } from './session';
import { tasksPage } from './tasks';

/** A page: renders into `main`; `signal` aborts when the person leaves the page. */
export type Page = (ctx: AppContext, main: HTMLElement, signal: AbortSignal) => Promise<void>;

interface Route {
  path: string;
  label: string;
  page: Page;
}

const CUSTOMER_ROUTES: Route[] = [
  { path: '/images', label: 'My Images', page: myImagesPage },
  { path: '/create-instance', label: 'Create instance', page: pickerPage },
  { path: '/tasks', label: 'Tasks', page: tasksPage },
];

const ADMIN_ROUTES: Route[] = [...operatorPages, { path: '/tasks', label: 'Tasks', page: tasksPage }];

function start(): void {
  const ctx = createContext(sessionFromUrl(new URL(location.href)), location.origin);
  const routes = ctx.session.kind === 'admin' ? ADMIN_ROUTES : CUSTOMER_ROUTES;
  const main = document.getElementById('main')!;
  const nav = document.getElementById('nav')!;
  document.getElementById('session')!.textContent = ctx.session.kind === 'admin' ? 'Operator' : `Account ${ctx.session.accountId}`;
  const links = routes.map((route) => h('a', { href: `#${route.path}` }, route.label));
  nav.replaceChildren(...links.map((link) => h('li', {}, link)));
  let current: AbortController | null = null;
  let first = true;

  async function show(): Promise<void> {
    const path = location.hash.replace(/^#/, '').split('?')[0] || routes[0]!.path;
    const route = routes.find((r) => r.path === path) ?? routes[0]!;
    current?.abort();
    const controller = new AbortController();
    current = controller;
    links.forEach((link) =>
      link.getAttribute('href') === `#${route.path}` ? link.setAttribute('aria-current', 'page') : link.removeAttribute('aria-current'),
    );
    document.title = `${route.label} · Example panel`;
    main.setAttribute('aria-busy', 'true');
    main.replaceChildren(h('p', {}, 'Loading…'));
    try {
      await route.page(ctx, main, controller.signal);
    } catch (error) {
      if (!controller.signal.aborted) main.replaceChildren(h('h1', { tabindex: '-1' }, route.label), errorBox(error));
    }
    main.removeAttribute('aria-busy');
    main.dataset.page = route.path;
    if (!first) main.querySelector<HTMLElement>('h1')?.focus();
    first = false;
  }

  window.addEventListener('hashchange', () => void show());
  void show();
}

start();
