/** USER_HZ, the unit of the times in /proc/<pid>/stat on Linux. */
export declare const HZ: number;
/** `[comm, utime + stime]` of a /proc stat line. */
export declare function parseStat(stat: string): [string, number];
