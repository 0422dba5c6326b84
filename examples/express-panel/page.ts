/**
 * The example panel's single page: the shell (navigation, main region, live region, styles) the
 * UI in `ui/` renders into. The UI is bundled from TypeScript when the panel starts
 * ({@link bundleUi}); it calls the API with the typed client (`instance-images/client`).
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const STYLES = `
:root{--fg:#1d232a;--muted:#56606b;--line:#d5dbe1;--accent:#0b5cad;--danger:#b3261e;--ok:#1e7a34;--bg:#fff;--soft:#f3f5f7}
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:var(--soft)}
header ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
header a{color:var(--accent);padding:.4rem .2rem;display:inline-block}
header a[aria-current=page]{font-weight:700;color:var(--fg)}
#session{margin:0 0 0 auto;color:var(--muted)}
main{padding:1rem;max-width:72rem}
h1{font-size:1.6rem;margin:.3rem 0 1rem}
h2{font-size:1.2rem}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.5rem;z-index:10}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
form{margin:0 0 1.5rem;padding:1rem;border:1px solid var(--line);border-radius:6px;max-width:40rem}
.field{display:flex;flex-direction:column;gap:.2rem;margin:0 0 .8rem;max-width:40rem}
.field small{color:var(--muted)}
input,select,button{font:inherit;padding:.45rem .6rem;border:1px solid #8a949e;border-radius:4px;min-height:2.5rem}
input[type=checkbox],input[type=radio]{min-height:auto}
input[aria-invalid=true]{border-color:var(--danger)}
button{background:#fff;cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.danger{color:var(--danger);border-color:var(--danger)}
dialog button.danger{background:var(--danger);color:#fff}
button:disabled{opacity:.6;cursor:not-allowed}
table{border-collapse:collapse;width:100%;margin:0 0 1rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border-bottom:1px solid var(--line);padding:.5rem .6rem;text-align:left;vertical-align:top}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;background:var(--soft);font-size:.9rem}
.status-available,.task-completed{background:#dff3e4;color:var(--ok)}
.status-error,.task-failed{background:#fbe3e1;color:var(--danger)}
.status-creating,.status-deleting,.task-running{background:#e3edf9;color:var(--accent)}
.reason{margin:.3rem 0 0;font-size:.9rem;color:var(--muted);max-width:28rem}
.error{color:var(--danger)}.ok{color:var(--ok)}
.row-actions{display:flex;flex-wrap:wrap;gap:.4rem}
.bindings{list-style:none;margin:0 0 .4rem;padding:0}
.bindings li{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem}
ii-task-progress{display:flex;flex-direction:column;gap:.15rem;margin-top:.3rem}
ii-task-progress progress{width:12rem;max-width:100%;height:1rem}
.progress-text{font-size:.85rem;color:var(--muted)}
dialog{border:1px solid var(--line);border-radius:8px;max-width:min(32rem,92vw);padding:1.2rem}
dialog::backdrop{background:rgba(0,0,0,.4)}
.actions{display:flex;gap:.6rem;justify-content:flex-end;margin-top:1rem;flex-wrap:wrap}
[role=tablist]{display:flex;flex-wrap:wrap;gap:.25rem;border-bottom:1px solid var(--line);margin-bottom:.8rem}
[role=tab]{border:0;border-bottom:3px solid transparent;border-radius:0;background:none}
[role=tab][aria-selected=true]{border-bottom-color:var(--accent);font-weight:600}
.choices{border:0;margin:0;padding:0;display:grid;gap:.4rem}
.choice{display:flex;flex-wrap:wrap;gap:.2rem .6rem;align-items:center;padding:.5rem;border:1px solid var(--line);border-radius:4px}
.choice small{color:var(--muted);flex-basis:100%;padding-left:1.6rem}
.cards{display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(18rem,1fr))}
.card{border:1px solid var(--line);border-radius:6px;padding:1rem}
.chart svg{max-width:100%;height:auto}
.cards form{margin:0;max-width:none}
.badge.protected{background:#fff4d6;color:#7a5200}
.error .detail{display:block;color:var(--muted)}
.upload-progress{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem;margin:0 0 .6rem}
.upload-progress progress{flex:1 1 12rem;height:1rem}
input[type=file]{max-width:100%}
.offers{list-style:none;margin:0 0 1rem;padding:0;display:grid;gap:.5rem}
.offers li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.4rem;padding:.5rem;border:1px solid var(--line);border-radius:4px}
.offers code,.checksum{word-break:break-all}
dialog input{width:100%}
@media (max-width:640px){
  main{padding:.6rem}
  table,thead,tbody,tr,td,caption{display:block;width:100%}
  thead{position:absolute;left:-999px}
  tr{border:1px solid var(--line);border-radius:6px;margin:0 0 .8rem;padding:.3rem .5rem}
  td{border:0;padding:.25rem 0;display:grid;grid-template-columns:8.5rem 1fr;gap:.5rem}
  td::before{content:attr(data-label);font-weight:600;color:var(--muted)}
  form{padding:.7rem}
  #session{margin:0}
}`;

/** The page shell (the UI script renders into `<main>`). */
export function panelShell(): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example panel</title><style>${STYLES}</style></head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><strong>Example panel</strong><nav aria-label="Main"><ul id="nav"></ul></nav><p id="session"></p></header>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<div id="announcer" class="visually-hidden" role="status" aria-live="polite"></div>
<script type="module" src="/ui/app.js"></script>
</body></html>`;
}

/** Bundles the UI (`ui/app.ts` and what it imports, the typed client included) into one ES module. */
export async function bundleUi(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./ui/app.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    minify: false,
    sourcemap: 'inline',
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}
