package io.capprune.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.spark.config.Preflight;
import io.capprune.spark.pipeline.DemoInputs;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 20 item 1 through the CLI: the two late failures of the issue now stop the command in
 * seconds, before Spark starts (printed as "cap-prune: ...", not "run failed"), with the key and a
 * value that works, and nothing is written to the run directory.
 */
class PreflightCliTest {
  @TempDir Path tmp;

  private record Outcome(int code, String err, double seconds) {}

  private static Outcome cli(List<String> args) {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    long t0 = System.nanoTime();
    int code;
    try (PrintStream o =
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      code = CapPruneMain.run(args.toArray(String[]::new), o, e);
    }
    return new Outcome(code, err.toString(StandardCharsets.UTF_8), (System.nanoTime() - t0) / 1e9);
  }

  private static void assertStoppedBeforeSpark(Outcome o, String key) {
    assertEquals(1, o.code(), o.err());
    assertTrue(
        o.err().contains(key + ": ") && o.err().contains(Preflight.WORKS + key + " = "), o.err());
    assertFalse(o.err().contains("failed"), "stopped by validation, not by a stage:\n" + o.err());
    assertTrue(o.seconds() < 30, "took " + o.seconds() + " s");
  }

  /**
   * A schedule longer than the run the data gives (the STS-B preset's old 11,000 warm-up steps).
   */
  @Test
  void aScheduleLongerThanTheRunStopsBeforeTheTeacherIsTrained() {
    Path inputs = tmp.resolve("inputs");
    DemoInputs.writeTo(inputs, 3);
    Path out = tmp.resolve("out");
    List<String> args = new ArrayList<>(List.of("run"));
    for (String s : DemoInputs.overrides(inputs)) {
      args.addAll(List.of("--conf", s));
    }
    args.addAll(
        List.of(
            "--conf",
            "prune.warmup-steps=11000",
            "--conf",
            "prune.initial-warmup=2",
            "--conf",
            "prune.final-warmup=3",
            "--output",
            out.toString()));
    Outcome o = cli(args);
    assertStoppedBeforeSpark(o, "cap.prune.warmup-steps");
    assertFalse(Files.exists(out), "nothing written to " + out);
  }

  /** `demo --conf prune.method=cap-structured` with the default 90 %: refused before Spark. */
  @Test
  void structuredFractionsTheModelCannotTakeStopBeforeSpark() {
    Path root = tmp.resolve("demo");
    Outcome o =
        cli(
            List.of(
                "demo",
                "--conf",
                "prune.method=cap-structured",
                "--conf",
                "structured.head-fractions=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]",
                "--conf",
                "structured.neuron-fractions=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]",
                "--output",
                root.toString()));
    assertStoppedBeforeSpark(o, "cap.structured.head-fractions");
    assertTrue(o.err().contains("[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.75]"), o.err());
    assertFalse(Files.exists(root.resolve("run")), "nothing written to the run directory");
  }
}
