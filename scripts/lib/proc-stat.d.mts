/** USER_HZ, the unit of the times in /proc/<pid>/stat on Linux. */
export declare const HZ: number;
/** `[comm, utime + stime]` of a /proc stat line. */
export declare function parseStat(stat: string): [string, number];
/** The fields of a /proc stat line after the comm, from `state` on (`minflt` is `[7]`). */
export declare function statFields(stat: string): string[];
/** The minor page faults (`minflt`) of a /proc stat line. */
export declare function minorFaults(stat: string): number;
