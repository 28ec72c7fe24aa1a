package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.junit.jupiter.api.Test;

class DjlRuntimeTest {

  @Test
  void offlinePyTorchThreadsAndDevice() {
    Engine engine = DjlRuntime.start(1);
    try {
      assertEquals("true", System.getProperty("ai.djl.offline"));
      assertEquals("PyTorch", engine.getEngineName());
      assertEquals("PyTorch", Engine.getInstance().getEngineName());
      assertEquals(1, DjlRuntime.numThreads());
      assertEquals(Device.cpu(), DjlRuntime.device(-1));
      // No GPU on this machine: asking for one falls back to the CPU instead of failing later.
      assertEquals(engine.getGpuCount() > 0 ? Device.gpu(0) : Device.cpu(), DjlRuntime.device(0));
      assertEquals(Device.cpu(), DjlRuntime.device(engine.getGpuCount()));
      assertThrows(IllegalArgumentException.class, () -> DjlRuntime.start(0));
    } finally {
      DjlRuntime.start(2);
    }
    assertEquals(2, DjlRuntime.numThreads());
  }
}
