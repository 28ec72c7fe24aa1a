package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.norm.Dropout;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * What the job relies on from {@link DjlRuntime}: the engine loads offline as PyTorch with the
 * task's thread count, and a seed fixes the dropout masks and the negative draws of a step. (The
 * device of a task is chosen by spark-job's {@code WorkerRuntime}, see WorkerRuntimeDeviceTest.)
 */
class DjlRuntimeTest {

  @Test
  void startsPyTorchOfflineWithTheTasksThreads() {
    Engine engine = DjlRuntime.start(1);
    try {
      assertEquals("true", System.getProperty("ai.djl.offline"));
      assertEquals(DjlRuntime.ENGINE, System.getProperty("ai.djl.default_engine"));
      assertEquals("PyTorch", engine.getEngineName());
      assertEquals("PyTorch", Engine.getInstance().getEngineName());
      assertEquals(1, DjlRuntime.numThreads());
      assertThrows(IllegalArgumentException.class, () -> DjlRuntime.start(0));
    } finally {
      DjlRuntime.start(2);
    }
    assertEquals(2, DjlRuntime.numThreads());
  }

  @Test
  void aSeedFixesDropoutMasksAndDraws() {
    DjlRuntime.start(1);
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray ones = m.ones(new Shape(4096));
      float[] first = draw(ones, 17);
      float[] again = draw(ones, 17);
      float[] other = draw(ones, 18);
      assertArrayEquals(first, again, 0f, "same seed: same dropout mask and uniform draw");
      assertFalse(Arrays.equals(first, other), "another seed: another mask");
      long dropped = 0;
      for (int i = 0; i < ones.size(); i++) {
        dropped += first[i] == 0 ? 1 : 0;
      }
      // p = 0.1 of 4096: about 410 dropped, far from 0 and from all
      assertEquals(410, dropped, 100, "dropout rate");
    }
  }

  /** The dropout mask of {@code x} (p = 0.1, training) followed by 16 uniform draws. */
  private static float[] draw(NDArray x, int seed) {
    DjlRuntime.seed(seed);
    NDArray masked = Dropout.dropout(x, 0.1f, true).singletonOrThrow();
    NDArray uniform = x.getManager().randomUniform(0, 1, new Shape(16));
    float[] a = masked.toFloatArray();
    float[] b = uniform.toFloatArray();
    float[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
