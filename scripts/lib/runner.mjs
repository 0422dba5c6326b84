/**
 * Runs a bench's helper commands (`dd`, `qemu-io`, `virsh start`...) in a process of its own,
 * started once before anything is timed. Protocol: one JSON line `{ file, args }` per command on
 * stdin; one JSON line `{ code, stdout, stderr }` per finished command on stdout (the bench sends
 * one command at a time). It ends
 * with its stdin.
 *
 * Why: a process that forks (every `execFileSync` does) marks all its private pages copy-on-write,
 * and its next write to each page faults. A bench that ran `virsh start` just before a timed
 * recapture made the recapture pay a fault per page of the panel's memory it wrote (its chunk
 * buffers, its heap): ~27,000 faults, ~0.3 s of CPU on these VMs, where a fault costs ~14 µs. A
 * panel does not fork to capture over SSH (the hypervisor does that work), so the bench's helper
 * commands must not fork the process that plays the panel either.
 */
import { execFile } from 'node:child_process';
import process from 'node:process';
import { createInterface } from 'node:readline';

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const { file, args } = JSON.parse(line);
    execFile(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      process.stdout.write(`${JSON.stringify({ code, stdout, stderr: stderr || (error ? String(error.message) : '') })}\n`);
    });
  })
  .on('close', () => process.exit(0));
process.stdout.write('ready\n');
