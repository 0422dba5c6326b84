/**
 * Reading a process's or thread's CPU time from Linux's /proc (shared by the CPU sampler and the
 * benches' helpers).
 */

/** USER_HZ, the unit of the times in /proc/<pid>/stat on Linux. */
export const HZ = 100;

/**
 * `[comm, utime + stime]` of a /proc stat line (the comm may hold spaces and parentheses: it ends
 * at the line's last `)`).
 * @param {string} stat
 * @returns {[string, number]}
 */
export function parseStat(stat) {
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return [stat.slice(stat.indexOf('(') + 1, close), Number(fields[11]) + Number(fields[12])];
}
