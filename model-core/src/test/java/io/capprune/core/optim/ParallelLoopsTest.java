package io.capprune.core.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelLoopsTest {

  @Test
  void runsEveryIndexOnce() {
    AtomicIntegerArray calls = new AtomicIntegerArray(1000);
    ParallelLoops.forEach(1000, calls::incrementAndGet);
    for (int i = 0; i < 1000; i++) {
      assertEquals(1, calls.get(i), "index " + i);
    }
  }

  @Test
  void rethrowsTheWorkersExceptionUnchanged() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                ParallelLoops.forEach(
                    64,
                    i -> {
                      if (i == 37) {
                        throw new IllegalArgumentException(
                            "'encoder.layer.3.output.dense.weight' holds NaN");
                      }
                    }));
    assertEquals("'encoder.layer.3.output.dense.weight' holds NaN", e.getMessage());
  }
}
