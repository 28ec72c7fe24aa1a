package io.capprune.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cap-prune gpu-check} in Spark local mode on this machine's CPU: one task, a tensor created
 * and reduced on the device a training task would use, and the executor's view printed. With {@code
 * cap.worker.use-gpu = true} where Spark schedules no GPU, it and the training commands stop before
 * Spark starts.
 */
class GpuCheckTest {
  @TempDir Path tmp;

  private record Outcome(int code, String out, String err) {}

  private static Outcome cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code;
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      code = CapPruneMain.run(args, o, e);
    }
    return new Outcome(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void localModeReportsTheCpuExecutorAndItsTensor() {
    Outcome r = cli("gpu-check", "--master", "local[2]");
    assertEquals(0, r.code, r.err + r.out);
    List<String> lines = r.out.lines().toList();
    assertTrue(
        lines
            .get(0)
            .startsWith(
                "cap-prune gpu-check: master local[2], cap.worker.use-gpu = auto, GPUs not used"),
        r.out);
    assertTrue(
        lines.get(1).startsWith("task")
            && lines.get(1).contains("CUDA_VIS_DEV")
            && lines.get(1).contains("libtorch"),
        r.out);
    String row = lines.get(2);
    List<String> cells = List.of(row.trim().split("\\s+"));
    assertEquals("0", cells.get(0), row);
    assertEquals("driver", cells.get(2), "local mode: the driver is the executor: " + row);
    assertEquals("-", cells.get(3), "no GPU address assigned: " + row);
    String cvd = System.getenv("CUDA_VISIBLE_DEVICES");
    assertEquals(cvd == null ? "unset" : "'" + cvd + "'", cells.get(4), row);
    assertEquals("cpu()", cells.get(5), "device chosen: " + row);
    assertEquals(
        "cpu()", cells.get(6), "the probe tensor's device as the engine reports it: " + row);
    assertEquals("0", cells.get(7), "engine GPU count on this machine: " + row);
    assertEquals("cpu", cells.get(8), "flavour of the natives jar DJL unpacked: " + row);
    assertTrue(row.contains("(natives jar)") || row.contains("(PYTORCH_LIBRARY_PATH)"), row);
    assertTrue(r.out.contains("gpu-check: OK, 1 executor(s), on the CPU"), r.out);
    assertFalse(r.out.contains("FAILED"), r.out);
  }

  @Test
  void useGpuTrueWithoutScheduledGpusStopsBeforeSparkStarts() throws Exception {
    Outcome check = cli("gpu-check", "--conf", "worker.use-gpu=true");
    assertEquals(2, check.code, check.out + check.err);
    assertTrue(
        check.err.contains(
            "configuration error: cap.worker.use-gpu: is true but Spark assigns no GPU"),
        check.err);
    assertTrue(check.out.isEmpty(), "nothing ran: " + check.out);

    Path output = tmp.resolve("run");
    Outcome run =
        cli(
            "run",
            "--conf",
            "worker.use-gpu=true",
            "--conf",
            "model=\"" + tmp.resolve("no-model") + "\"",
            "--output",
            output.toString());
    assertEquals(2, run.code, run.err);
    assertTrue(
        run.err.contains("cap.worker.use-gpu"),
        "the GPU check comes before the inputs are read: " + run.err);
    assertFalse(Files.exists(output), "the output directory is not touched");
  }
}
