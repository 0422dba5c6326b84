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
  const fields = statFields(stat);
  return [stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), Number(fields[11]) + Number(fields[12])];
}

/**
 * The fields of a /proc stat line after the comm, from `state` on (so `minflt` is `[7]`, `utime`
 * `[11]`, `stime` `[12]`).
 * @param {string} stat
 * @returns {string[]}
 */
export function statFields(stat) {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * The minor page faults (`minflt`) of a /proc stat line.
 * @param {string} stat
 * @returns {number}
 */
export function minorFaults(stat) {
  return Number(statFields(stat)[7]);
}
