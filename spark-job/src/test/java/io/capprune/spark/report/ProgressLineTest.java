package io.capprune.spark.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ProgressLineTest {

  private static StepRecord.Builder capStep() {
    return StepRecord.builder(120, 2000)
        .epoch(1)
        .loss(0.8123)
        .ce(0.6931)
        .kd(0.1012)
        .prc(0.0150)
        .snc(0.0)
        .fic(0.0140)
        .sparsity(0.123)
        .threshold(0.877)
        .learningRate(2.9e-5)
        .gradNorm(0.83)
        .examplesPerSecond(412.4)
        .secondsElapsed(10)
        .secondsLeft(192);
  }

  @Test
  void allTermsOn() {
    assertEquals(
        "step 120/2000 (6.0%) ep 1 | loss 0.8123 ce 0.6931 kd 0.1012 prc 0.0150 snc 0.0000"
            + " fic 0.0140 | sparsity 12.3% | lr 2.9e-05 | 412 ex/s | 00:03:12 left",
        ProgressLine.format(capStep().build()));
  }

  @Test
  void termsThatAreOffAndUnknownValuesAreLeftOut() {
    StepRecord plainMovement =
        StepRecord.builder(5, 40)
            .epoch(2)
            .loss(1.25)
            .ce(0.5)
            .kd(0.75)
            .regulariser(3.2e-6)
            .learningRate(0)
            .examplesPerSecond(2.345)
            .build();
    assertEquals(
        "step 5/40 (12.5%) ep 2 | loss 1.2500 ce 0.5000 kd 0.7500 reg 3.20e-06 | lr 0"
            + " | 2.3 ex/s | --:--:-- left",
        ProgressLine.format(plainMovement));
  }

  @Test
  void devMetricsFollowInTheirOrder() {
    Map<String, Double> dev = new LinkedHashMap<>();
    dev.put("f1", 0.88123);
    dev.put("accuracy", 0.8512);
    String line = ProgressLine.format(capStep().dev(dev).build());
    assertEquals(
        "step 120/2000 (6.0%) ep 1 | loss 0.8123 ce 0.6931 kd 0.1012 prc 0.0150 snc 0.0000"
            + " fic 0.0140 | sparsity 12.3% | lr 2.9e-05 | 412 ex/s | 00:03:12 left"
            + " | dev f1 0.8812 accuracy 0.8512",
        line);
  }

  @Test
  void divergedLossIsShownNotHidden() {
    StepRecord r = StepRecord.builder(7, 10).loss(Double.NaN).ce(Double.POSITIVE_INFINITY).build();
    assertEquals(
        "step 7/10 (70.0%) ep 1 | loss NaN ce Infinity | --:--:-- left", ProgressLine.format(r));
  }

  @Test
  void durations() {
    assertEquals("00:00:00", ProgressLine.duration(0));
    assertEquals("00:03:12", ProgressLine.duration(191.6));
    assertEquals("23:59:59", ProgressLine.duration(86_399));
    assertEquals("2d 03:04:05", ProgressLine.duration(2 * 86_400 + 3 * 3600 + 4 * 60 + 5));
    assertEquals("--:--:--", ProgressLine.duration(Double.NaN));
    assertEquals("--:--:--", ProgressLine.duration(-1));
  }

  @Test
  void recordRejectsNonsense() {
    var e =
        assertThrows(
            IllegalArgumentException.class, () -> StepRecord.builder(1, 10).sparsity(12.3).build());
    assertEquals("sparsity is a fraction in [0, 1], got 12.3", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> StepRecord.builder(1, 0).build());
    assertEquals("totalSteps must be >= 1, got 0", e.getMessage());
  }

  @Test
  void lossTermsListOnlyTheTermsThatAreOn() {
    StepRecord r = StepRecord.builder(1, 2).loss(1).ce(0.4).fic(0.0).build();
    assertEquals(Map.of("ce", 0.4, "fic", 0.0), r.lossTerms());
    assertEquals("[ce, fic]", r.lossTerms().keySet().toString());
  }
}
