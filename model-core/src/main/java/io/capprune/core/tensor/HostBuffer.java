package io.capprune.core.tensor;

import ai.djl.Device;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A direct host buffer kept between steps to stage copies to and from one device, grown to the
 * largest copy asked for. For a GPU it is page-locked where the driver allows ({@link
 * PinnedMemory}), so the copy engine moves it without the driver's bounce buffer; for the CPU, or
 * where pinning is not available, it is an ordinary direct buffer. Keeping it also spares the first
 * touch of fresh pages, which at BERT-base size costs more than the copy (docs/results.md).
 *
 * <p>Not thread-safe: one per user, used under that user's lock. {@link #close} frees pinned
 * memory; a buffer handed out before must not be used after it, nor after a {@link #get} that grew
 * it.
 */
public final class HostBuffer implements AutoCloseable {
  private final Device device;
  private ByteBuffer buffer;

  /** A buffer for copies between the heap and {@code device}. */
  public HostBuffer(Device device) {
    this.device = device;
  }

  /**
   * {@code bytes} bytes of the kept buffer (contents undefined), native byte order, position 0 and
   * capacity {@code bytes}.
   */
  public ByteBuffer get(long bytes) {
    if (bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "a host copy of " + bytes + " bytes exceeds one buffer (2 GiB)");
    }
    if (buffer == null || buffer.capacity() < bytes) {
      release();
      ByteBuffer pinned = PinnedMemory.allocate(bytes, device);
      buffer = pinned != null ? pinned : ByteBuffer.allocateDirect((int) bytes);
    }
    ByteBuffer b = buffer.duplicate();
    b.clear().limit((int) bytes);
    return b.slice().order(ByteOrder.nativeOrder());
  }

  /** Whether the kept buffer is page-locked (false before the first {@link #get}). */
  public boolean pinned() {
    return PinnedMemory.isPinned(buffer);
  }

  private void release() {
    if (buffer != null) {
      PinnedMemory.free(buffer);
      buffer = null;
    }
  }

  @Override
  public void close() {
    release();
  }
}
