/**
 * A signed download whose storage read is a probe: an endless stream of 64 KiB chunks produced
 * only when read, recording whether it was destroyed and what signal it was opened with. It
 * replaces the harness SDK's `exports.openDownload`, so any link to `img-1` serves it.
 */
import { Readable } from 'node:stream';
import type { ExportDownload } from '../../src/services/image-export';
import type { ExpressHarness } from './express-harness';

/** What the handler did to the probe's storage read. */
export interface DownloadProbe {
  /** Chunks produced (each read by the consumer of the stream). */
  produced: number;
  /** Whether the read stream was destroyed. */
  destroyed: boolean;
  /** The signal `open` received. */
  signal: AbortSignal | null;
}

/** The path (below the mount point) of a download link the probe answers. */
export const PROBE_DOWNLOAD_PATH = '/downloads/images/img-1?account=acct-alice&expires=1&signature=x';

/** Installs the probe download on the harness's SDK. */
export function probeDownload(t: Pick<ExpressHarness, 'ii'>): DownloadProbe {
  const probe: DownloadProbe = { produced: 0, destroyed: false, signal: null };
  const source = new Readable({
    read() {
      probe.produced++;
      this.push(Buffer.alloc(64 * 1024, 7));
    },
    destroy(error, callback) {
      probe.destroyed = true;
      callback(error);
    },
  });
  const download: ExportDownload = {
    imageId: 'img-1',
    filename: 'big.qcow2',
    format: 'qcow2',
    sizeBytes: 1024 ** 4,
    sha256: 'a'.repeat(64),
    open: async (_range, signal) => {
      probe.signal = signal ?? null;
      return source;
    },
  };
  t.ii.exports.openDownload = async () => download;
  return probe;
}
