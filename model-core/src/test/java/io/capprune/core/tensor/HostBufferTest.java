package io.capprune.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * The kept staging buffer: sizes, reuse, growth, and what it falls back to where page-locked memory
 * is not to be had (a CPU device; a GPU device on a machine without the CUDA driver, as CI's). The
 * page-locked path itself runs on the GPU machine (DownloadBenchmark and the update and worker
 * benchmarks print which one they used).
 */
class HostBufferTest {

  @Test
  void givesExactlyTheBytesAskedForReusesThemAndGrows() {
    try (HostBuffer staging = new HostBuffer(Device.cpu())) {
      ByteBuffer a = staging.get(64);
      assertEquals(64, a.capacity());
      assertEquals(0, a.position());
      assertEquals(ByteOrder.nativeOrder(), a.order());
      assertTrue(a.isDirect());
      a.putLong(0, 0x1234_5678_9abc_def0L);
      // a smaller request is the front of the same memory
      ByteBuffer b = staging.get(16);
      assertEquals(16, b.capacity());
      assertEquals(0x1234_5678_9abc_def0L, b.getLong(0));
      // a larger one replaces it
      ByteBuffer c = staging.get(1 << 20);
      assertEquals(1 << 20, c.capacity());
      assertFalse(staging.pinned(), "a CPU device never gets page-locked memory");
      assertThrows(IllegalArgumentException.class, () -> staging.get(1L << 31));
    }
  }

  @Test
  void aCpuDeviceGetsNoPinnedMemory() {
    assertNull(PinnedMemory.allocate(1024, Device.cpu()));
  }

  @Test
  void aGpuDeviceGetsPinnedMemoryOnlyWhereTheDriverGivesIt() {
    ByteBuffer b = PinnedMemory.allocate(4096, Device.gpu(0));
    try {
      if (b == null) {
        // no NVIDIA driver here (CI): the reason is said, and staging still works, pageable
        String reason = PinnedMemory.unavailableReason();
        assertTrue(reason != null && !reason.isBlank(), "a reason for pageable buffers");
        assertTrue(reason.length() < 300, "one readable line, not JNA's search path: " + reason);
        assertTrue(PinnedMemory.describe().startsWith("pageable ("), PinnedMemory.describe());
        try (HostBuffer staging = new HostBuffer(Device.gpu(0))) {
          assertEquals(4096, staging.get(4096).capacity());
          assertFalse(staging.pinned());
        }
      } else {
        assertEquals(4096, b.capacity());
        assertTrue(b.isDirect());
        assertTrue(PinnedMemory.isPinned(b));
      }
    } finally {
      PinnedMemory.free(b);
    }
    assertFalse(PinnedMemory.isPinned(b));
  }
}
