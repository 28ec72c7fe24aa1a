package io.capprune.spark.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EtaEstimatorTest {

  @Test
  void unknownUntilTwoObservations() {
    EtaEstimator eta = new EtaEstimator(5);
    assertTrue(Double.isNaN(eta.secondsLeft(100)));
    eta.observe(1, 30.0); // the first step pays for start-up
    assertTrue(Double.isNaN(eta.secondsLeft(100)));
    eta.observe(2, 32.0);
    assertEquals(2.0, eta.secondsPerStep(), 1e-12);
    assertEquals(196.0, eta.secondsLeft(100), 1e-9);
  }

  @Test
  void movingWindowForgetsTheSlowStart() {
    EtaEstimator eta = new EtaEstimator(4);
    eta.observe(10, 100); // slow warm-up: 10 s/step so far
    eta.observe(20, 110);
    eta.observe(30, 120);
    eta.observe(40, 130);
    // window = steps 10..40: 30 s over 30 steps
    assertEquals(1.0, eta.secondsPerStep(), 1e-12);
    eta.observe(50, 135); // drops step 10: 25 s over 30 steps
    assertEquals(25.0 / 30, eta.secondsPerStep(), 1e-12);
    assertEquals(25.0 / 30 * 950, eta.secondsLeft(1000), 1e-9);
    assertEquals(0.0, eta.secondsLeft(50), 0);
    assertEquals(0.0, eta.secondsLeft(10), 0);
  }

  @Test
  void resetStartsOver() {
    EtaEstimator eta = new EtaEstimator(3);
    eta.observe(1, 1);
    eta.observe(2, 2);
    eta.reset();
    assertTrue(Double.isNaN(eta.secondsPerStep()));
    eta.observe(1, 50); // a resumed run may restart from a lower step
    eta.observe(3, 56);
    assertEquals(3.0, eta.secondsPerStep(), 1e-12);
  }

  @Test
  void rejectsOutOfOrderObservations() {
    EtaEstimator eta = new EtaEstimator(3);
    eta.observe(5, 10);
    var e = assertThrows(IllegalArgumentException.class, () -> eta.observe(5, 11));
    assertEquals("steps must increase: got step 5 after step 5", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> eta.observe(6, 9));
    assertEquals("time went backwards: 9.0 s at step 6 after 10.0 s at step 5", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new EtaEstimator(1));
  }
}
