/**
 * Child process of the crash test: starts a snapshot-commit capture and SIGKILLs itself right
 * after the marker overlay exists (before the commit). Usage: crash-child.ts DOMAIN SCRATCH OUT
 */
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';

const [domainName, scratchDir, out] = process.argv.slice(2);
if (!domainName || !scratchDir || !out) throw new Error('usage: crash-child.ts DOMAIN SCRATCH OUT');
const driver = createLibvirtDriver(
  { id: 'hv', name: 'hv', locationId: 'loc', connection: { type: 'local' }, scratchDir },
  createLocalExecutor(),
  {
    method: 'snapshot-commit',
    hooks: {
      afterSnapshot() {
        process.stdout.write('overlay-created\n');
        process.kill(process.pid, 'SIGKILL');
      },
    },
  },
);
void driver.capture({ domainName, output: { kind: 'path', path: out } });
