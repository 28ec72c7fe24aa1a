package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SparsityScheduleTest {

  // w=10, iw=2, fw=3, T=100: dense through step 20, cubic over 50 steps, final from step 71.
  private final SparsitySchedule s = new SparsitySchedule(10, 2, 3, 100, 1.0, 0.1);

  @Test
  void denseThroughTheInitialWarmup() {
    for (int t = 0; t <= 20; t++) {
      assertEquals(1.0, s.valueAt(t), "step " + t);
    }
  }

  @Test
  void finalFromStep71() {
    for (int t = 71; t <= 100; t++) {
      assertEquals(0.1, s.valueAt(t), "step " + t);
    }
  }

  @Test
  void cubicValuesByHand() {
    // t=21: 1 - 1/50 = 0.98, 0.98^3 = 0.941192 -> 0.1 + 0.9*0.941192
    assertEquals(0.9470728, s.valueAt(21), 1e-12);
    // t=45: (1 - 25/50)^3 = 0.125 -> 0.2125
    assertEquals(0.2125, s.valueAt(45), 1e-12);
    // t=60: (1 - 40/50)^3 = 0.008 -> 0.1072
    assertEquals(0.1072, s.valueAt(60), 1e-12);
    // t=70 is the last cubic step and lands on the final value
    assertEquals(0.1, s.valueAt(70), 1e-12);
  }

  @Test
  void monotoneBetween() {
    for (int t = 1; t <= 100; t++) {
      assertTrue(s.valueAt(t) <= s.valueAt(t - 1), "step " + t);
    }
  }

  @Test
  void referenceQqpShape() {
    // docs/cap-math.md §3.4: T=113,710, dense until 22,000, cubic until 80,710.
    SparsitySchedule q = new SparsitySchedule(11000, 2, 3, 113_710, 1.0, 0.03);
    assertEquals(1.0, q.valueAt(22_000));
    assertTrue(q.valueAt(22_001) < 1.0);
    assertTrue(q.valueAt(80_710) > 0.03 - 1e-12);
    assertEquals(0.03, q.valueAt(80_711));
  }

  @Test
  void softThresholdRampsUp() {
    SparsitySchedule soft = new SparsitySchedule(10, 2, 3, 100, 0.0, 0.1);
    assertEquals(0.0, soft.valueAt(20));
    assertEquals(0.1 - 0.1 * 0.125, soft.valueAt(45), 1e-12);
    assertEquals(0.1, soft.valueAt(71));
  }

  @Test
  void rejectsScheduleShorterThanItsWarmups() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> new SparsitySchedule(10, 2, 3, 50, 1.0, 0.1));
    assertEquals(
        "sparsity schedule: total_steps 50 must exceed (initial_warmup + final_warmup)"
            + " * warmup_steps = 50",
        e.getMessage());
  }
}
