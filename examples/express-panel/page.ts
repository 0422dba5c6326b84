/**
 * The example panel's customer page: My Images (name, source instance, disk size, status, creation
 * time), a Create Image form per instance, and live progress from the tasks' Server-Sent Events.
 * Plain HTML + fetch; the account comes from the `account` query parameter (demo only).
 */
export function myImagesPage(): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>My Images</title>
<style>body{font-family:sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem}progress{width:12rem}</style></head>
<body>
<h1>My Images</h1>
<p id="account"></p>
<form id="create"><label>Instance <select id="instance"></select></label>
<label>Name <input id="name" required maxlength="100" value="production-web-server-v2"></label>
<button type="submit">Create</button></form>
<p><progress id="progress" max="100" value="0" hidden></progress> <span id="status"></span></p>
<table><thead><tr><th>Name</th><th>Source instance</th><th>Disk size</th><th>Status</th><th>Created</th></tr></thead><tbody id="images"></tbody></table>
<script>
const account = new URLSearchParams(location.search).get('account') || 'acct-demo';
const headers = { 'x-account': account, 'content-type': 'application/json' };
document.getElementById('account').textContent = 'Account: ' + account;
const label = { creating: 'Creating', available: 'Available', error: 'Error', deleting: 'Deleting' };
function size(b) { return b == null ? '—' : (b / 1048576).toFixed(1) + ' MiB'; }
async function refresh() {
  const res = await fetch('/api/images', { headers });
  const page = await res.json();
  const rows = page.items.map((i) => '<tr data-id="' + i.id + '"><td class="name"></td><td class="source"></td><td>' + size(i.sizeBytes) + '</td><td class="status">' + label[i.status] + '</td><td>' + new Date(i.createdAt).toLocaleString() + '</td></tr>');
  const body = document.getElementById('images');
  body.innerHTML = rows.join('');
  page.items.forEach((i, n) => { body.children[n].querySelector('.name').textContent = i.name; body.children[n].querySelector('.source').textContent = i.sourceInstanceName || i.sourceInstanceId; });
}
async function loadInstances() {
  const list = await (await fetch('/demo/instances', { headers })).json();
  const select = document.getElementById('instance');
  for (const i of list) { const o = document.createElement('option'); o.value = i.id; o.textContent = i.name; select.append(o); }
}
document.getElementById('create').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/api/images', { method: 'POST', headers, body: JSON.stringify({ instanceId: document.getElementById('instance').value, name: document.getElementById('name').value }) });
  const body = await res.json();
  const status = document.getElementById('status');
  if (!res.ok) { status.textContent = body.detail || body.title; return; }
  await refresh();
  const bar = document.getElementById('progress');
  bar.hidden = false;
  status.textContent = 'Creating…';
  const events = new EventSource('/api/tasks/' + body.task.id + '/events?account=' + encodeURIComponent(account));
  // progress.percent is the whole task's (never decreasing); bytes are those of the current step.
  const mib = (n) => (n / 1048576).toFixed(1) + ' MiB';
  const show = (task) => { bar.value = task.progress.percent; status.textContent = task.progress.step + ' ' + task.progress.percent + '%' + (task.progress.bytesTotal ? ' (' + mib(task.progress.bytesDone) + ' of ' + mib(task.progress.bytesTotal) + ')' : ''); };
  events.addEventListener('task.progress', (ev) => show(JSON.parse(ev.data)));
  events.addEventListener('task.finished', async (ev) => { const task = JSON.parse(ev.data); events.close(); bar.value = task.progress.percent; status.textContent = task.status === 'completed' ? 'Available' : 'Failed: ' + task.errorMessage; await refresh(); });
});
loadInstances().then(refresh);
</script>
</body></html>`;
}
