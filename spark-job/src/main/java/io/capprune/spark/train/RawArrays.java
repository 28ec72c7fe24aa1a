package io.capprune.spark.train;

import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Primitive arrays written to and read from a serialisation stream as raw little-endian bytes, in
 * chunks through one small reused byte[]. {@code ObjectOutputStream.writeObject(short[])} converts
 * value by value: 171 MB of gradient halves took about 280 ms to write that way on this project's
 * 2-core machine ({@code bin/cap-prune-bench gradient-merge}); bulk conversion through a {@link
 * ByteBuffer} view is a memory copy. The length travels first, so a reader can allocate once.
 */
final class RawArrays {

  // 256 KiB: large enough that per-chunk overhead vanishes, small enough to stay in cache
  private static final int CHUNK_BYTES = 1 << 18;

  private RawArrays() {}

  static void writeShorts(DataOutput out, short[] a) throws IOException {
    out.writeInt(a.length);
    inChunks(
        a.length,
        2,
        (view, from, n) -> {
          view.asShortBuffer().put(a, from, n);
          out.write(view.array(), 0, 2 * n);
        });
  }

  static short[] readShorts(DataInput in) throws IOException {
    short[] a = new short[checkedLength(in.readInt())];
    inChunks(
        a.length,
        2,
        (view, from, n) -> {
          in.readFully(view.array(), 0, 2 * n);
          view.asShortBuffer().get(a, from, n);
        });
    return a;
  }

  static void writeFloats(DataOutput out, float[] a) throws IOException {
    out.writeInt(a.length);
    inChunks(
        a.length,
        4,
        (view, from, n) -> {
          view.asFloatBuffer().put(a, from, n);
          out.write(view.array(), 0, 4 * n);
        });
  }

  static float[] readFloats(DataInput in) throws IOException {
    float[] a = new float[checkedLength(in.readInt())];
    inChunks(
        a.length,
        4,
        (view, from, n) -> {
          in.readFully(view.array(), 0, 4 * n);
          view.asFloatBuffer().get(a, from, n);
        });
    return a;
  }

  /** Values [from, from + n) of the array through {@code view}, a chunk at a time. */
  private interface Chunk {
    void copy(ByteBuffer view, int from, int n) throws IOException;
  }

  private static void inChunks(int length, int bytesPerValue, Chunk chunk) throws IOException {
    ByteBuffer view = ByteBuffer.wrap(new byte[CHUNK_BYTES]).order(ByteOrder.LITTLE_ENDIAN);
    int perChunk = CHUNK_BYTES / bytesPerValue;
    for (int from = 0; from < length; from += perChunk) {
      view.clear();
      chunk.copy(view, from, Math.min(perChunk, length - from));
    }
  }

  static void writeBytes(DataOutput out, byte[] a) throws IOException {
    out.writeInt(a.length);
    out.write(a);
  }

  static byte[] readBytes(DataInput in) throws IOException {
    byte[] a = new byte[checkedLength(in.readInt())];
    in.readFully(a);
    return a;
  }

  private static int checkedLength(int n) throws IOException {
    if (n < 0) {
      throw new IOException("gradient buffer: negative array length " + n + " (corrupt stream)");
    }
    return n;
  }
}
