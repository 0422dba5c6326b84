/**
 * Which bytes of a read request the server's content chunks have covered so far: the protocol lets
 * chunks arrive in any order but forbids overlaps, and a successful reply must cover every byte.
 * @module
 */

/** Disjoint covered ranges of `[0, length)`, merged when adjacent; bounded in count. */
export class Coverage {
  /** Sorted, disjoint, non-adjacent `[start, end)` ranges. */
  readonly #ranges: Array<[number, number]> = [];
  #covered = 0;

  /**
   * @param length - bytes of the request.
   * @param maxRanges - separate ranges held at most (chunks in order merge into one).
   */
  constructor(
    readonly length: number,
    readonly maxRanges = 4096,
  ) {}

  /** Bytes covered so far. */
  get covered(): number {
    return this.#covered;
  }

  /** True when every byte is covered. */
  get complete(): boolean {
    return this.#covered === this.length;
  }

  /**
   * Records `[start, start + size)`; returns a reason when it is out of bounds, overlaps an earlier
   * range or would exceed the range limit, and null when it was recorded.
   */
  add(start: number, size: number): string | null {
    const end = start + size;
    if (size <= 0 || start < 0 || end > this.length) return `bytes ${start}–${end} lie outside the ${this.length} bytes asked for`;
    // First range that ends after `start`.
    let lo = 0;
    let hi = this.#ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ranges[mid] as [number, number])[1] <= start) lo = mid + 1;
      else hi = mid;
    }
    const next = this.#ranges[lo];
    if (next && next[0] < end) return `bytes ${start}–${end} overlap bytes sent earlier`;
    const previous = this.#ranges[lo - 1];
    const joinsPrevious = previous !== undefined && previous[1] === start;
    const joinsNext = next !== undefined && next[0] === end;
    if (joinsPrevious && joinsNext) {
      previous[1] = next[1];
      this.#ranges.splice(lo, 1);
    } else if (joinsPrevious) previous[1] = end;
    else if (joinsNext) next[0] = start;
    else {
      if (this.#ranges.length >= this.maxRanges) return `more than ${this.maxRanges} separate pieces in one reply`;
      this.#ranges.splice(lo, 0, [start, end]);
    }
    this.#covered += size;
    return null;
  }
}
