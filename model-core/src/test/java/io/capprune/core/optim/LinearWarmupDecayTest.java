package io.capprune.core.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LinearWarmupDecayTest {

  @Test
  void warmupThenLinearDecayToZero() {
    LinearWarmupDecay s = new LinearWarmupDecay(10, 100);
    assertEquals(0.0, s.multiplier(0));
    assertEquals(0.5, s.multiplier(5));
    assertEquals(0.9, s.multiplier(9), 1e-15);
    assertEquals(1.0, s.multiplier(10));
    assertEquals(0.5, s.multiplier(55));
    assertEquals(1.0 / 90, s.multiplier(99), 1e-15);
    assertEquals(0.0, s.multiplier(100));
    assertEquals(0.0, s.multiplier(130));
  }

  @Test
  void noWarmupStartsAtOne() {
    LinearWarmupDecay s = new LinearWarmupDecay(0, 4);
    assertEquals(1.0, s.multiplier(0));
    assertEquals(0.75, s.multiplier(1));
  }

  @Test
  void warmupRatioRoundsUpLikeTrainingArguments() {
    assertEquals(10, LinearWarmupDecay.withWarmupRatio(0.1, 95).warmupSteps());
    assertEquals(23, LinearWarmupDecay.withWarmupRatio(0.1, 230).warmupSteps());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> LinearWarmupDecay.withWarmupRatio(1.5, 10));
    assertEquals("lr schedule: warmup_ratio must be in [0, 1], got 1.5", e.getMessage());
  }
}
