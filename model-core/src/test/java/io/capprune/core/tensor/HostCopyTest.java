package io.capprune.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The chunked copies give the bytes a single-threaded copy gives, across chunk boundaries. */
class HostCopyTest {

  @Test
  void floatsAndShortsRoundTripAcrossChunksAtTheBuffersStart() {
    SplittableRandom rng = new SplittableRandom(5);
    int n = 2 * HostCopy.CHUNK + 12_345;
    float[] f = new float[n];
    short[] h = new short[n];
    for (int i = 0; i < n; i++) {
      f[i] = (float) rng.nextGaussian();
      h[i] = (short) rng.nextInt();
    }
    // a buffer with a moved position and big-endian order: copies use 0 and native order
    ByteBuffer b = ByteBuffer.allocateDirect(4 * n + 8).order(ByteOrder.BIG_ENDIAN);
    b.position(7);
    HostCopy.put(f, b);
    assertEquals(7, b.position(), "the caller's position is left alone");
    float[] single = new float[n];
    b.duplicate().order(ByteOrder.nativeOrder()).clear().asFloatBuffer().get(single);
    assertArrayEquals(f, single);
    float[] back = new float[n];
    HostCopy.get(b, back);
    assertArrayEquals(f, back);

    HostCopy.put(h, b);
    short[] shorts = new short[n];
    HostCopy.get(b, shorts);
    assertArrayEquals(h, shorts);
    short[] singleShorts = new short[n];
    b.duplicate().order(ByteOrder.nativeOrder()).clear().asShortBuffer().get(singleShorts);
    assertArrayEquals(h, singleShorts);
  }

  @Test
  void aBufferTooSmallIsRefused() {
    ByteBuffer b = ByteBuffer.allocateDirect(10);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> HostCopy.put(new float[3], b));
    assertEquals("a host buffer of 10 bytes for a copy of 12 bytes", e.getMessage());
  }
}
