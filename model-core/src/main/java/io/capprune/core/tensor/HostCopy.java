package io.capprune.core.tensor;

import io.capprune.core.optim.ParallelLoops;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Copies between Java arrays and the direct buffers that stage device transfers, in chunks on all
 * cores. Once the buffer is page-locked the device copy of BERT-base's gradient takes 3-4 ms on the
 * H100 host, and one thread copying the same 171 MB between the heap and the buffer takes several
 * times that (docs/results.md); memory bandwidth is shared, but one core does not reach it.
 *
 * <p>The buffers are read and written at absolute positions from 0 in native byte order, whatever
 * their position and order.
 */
public final class HostCopy {

  /** Values per work item: a few MB, so that small copies stay on the calling thread. */
  static final int CHUNK = 1 << 20;

  private HostCopy() {}

  /** {@code src} into the buffer's first {@code 2 * src.length} bytes. */
  public static void put(short[] src, ByteBuffer dst) {
    check(dst, 2L * src.length);
    chunks(src.length, (from, to) -> at(dst, 2L * from).asShortBuffer().put(src, from, to - from));
  }

  /** {@code src} into the buffer's first {@code 4 * src.length} bytes. */
  public static void put(float[] src, ByteBuffer dst) {
    check(dst, 4L * src.length);
    chunks(src.length, (from, to) -> at(dst, 4L * from).asFloatBuffer().put(src, from, to - from));
  }

  /** The buffer's first {@code 2 * dst.length} bytes into {@code dst}. */
  public static void get(ByteBuffer src, short[] dst) {
    check(src, 2L * dst.length);
    chunks(dst.length, (from, to) -> at(src, 2L * from).asShortBuffer().get(dst, from, to - from));
  }

  /** The buffer's first {@code 4 * dst.length} bytes into {@code dst}. */
  public static void get(ByteBuffer src, float[] dst) {
    check(src, 4L * dst.length);
    chunks(dst.length, (from, to) -> at(src, 4L * from).asFloatBuffer().get(dst, from, to - from));
  }

  private interface Range {
    void copy(int from, int to);
  }

  private static void chunks(int n, Range range) {
    int items = (int) ((n + (long) CHUNK - 1) / CHUNK);
    if (items <= 1) {
      range.copy(0, n);
      return;
    }
    ParallelLoops.forEach(
        items, i -> range.copy(i * CHUNK, (int) Math.min(n, (long) (i + 1) * CHUNK)));
  }

  /** A native-order view of {@code b} from byte {@code offset} (independent position and limit). */
  private static ByteBuffer at(ByteBuffer b, long offset) {
    ByteBuffer d = b.duplicate();
    d.clear().position((int) offset);
    return d.slice().order(ByteOrder.nativeOrder());
  }

  private static void check(ByteBuffer b, long bytes) {
    if (b.capacity() < bytes) {
      throw new IllegalArgumentException(
          "a host buffer of " + b.capacity() + " bytes for a copy of " + bytes + " bytes");
    }
  }
}
