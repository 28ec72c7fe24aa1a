package io.capprune.core.glue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every GLUE file in shared/data/glue, against the counts in SOURCES.md and the published split
 * sizes.
 */
@Tag("realdata")
class GlueRealDataTest {
  private static Path glue;

  @BeforeAll
  static void locate() {
    String dir = System.getProperty("capprune.sharedData");
    assertTrue(dir != null, "system property capprune.sharedData is not set");
    glue = Path.of(dir, "glue");
    assertTrue(Files.isDirectory(glue), glue + " is not a directory");
  }

  @ParameterizedTest
  @CsvSource({
    "CoLA, train, 8551",
    "CoLA, dev, 1043",
    "CoLA, test, 1063",
    "SST-2, train, 67349",
    "SST-2, dev, 872",
    "SST-2, test, 1821",
    "MRPC, train, 3668",
    "MRPC, dev, 408",
    "MRPC, test, 1725",
    "RTE, train, 2490",
    "RTE, dev, 277",
    "RTE, test, 3000",
    "STS-B, train, 5749",
    "STS-B, dev, 1500",
    "STS-B, test, 1379",
    "QNLI, dev, 5463",
    "QNLI, test, 5463",
    "WNLI, train, 635",
    "WNLI, dev, 71",
    "WNLI, test, 146"
  })
  void rowCounts(String taskName, String split, int expected) {
    GlueTask task = GlueTask.of(taskName);
    GlueData d = GlueReader.of(task).readSplit(glue, split);
    assertEquals(expected, d.size());
    assertEquals(0, d.skipped());
    for (int i = 0; i < d.size(); i++) {
      GlueExample e = d.examples().get(i);
      assertEquals(i, e.index());
      assertEquals(!split.equals("test"), e.isLabelled(), d.source() + " line " + e.line());
      assertEquals(task.isPair(), e.textB() != null);
    }
    // One line per example (plus the header): no row was merged or lost.
    int header = task.hasHeader(split) ? 1 : 0;
    assertEquals(expected + header, d.examples().get(d.size() - 1).line());
  }

  @Test
  void firstRowsMatchTheFiles() {
    GlueExample sst = GlueReader.of(GlueTask.SST2).readSplit(glue, "dev").examples().get(0);
    assertEquals(
        GlueExample.classification(
            0, "it 's a charming and often affecting journey . ", null, 1, 2),
        sst);
    GlueExample mrpc = GlueReader.of(GlueTask.MRPC).readSplit(glue, "train").examples().get(0);
    assertEquals(1, mrpc.label());
    assertTrue(mrpc.textA().startsWith("Amrozi accused his brother"), mrpc.textA());
    assertTrue(mrpc.textB().startsWith("Referring to him as only"), mrpc.textB());
    GlueExample sts = GlueReader.of(GlueTask.STSB).readSplit(glue, "dev").examples().get(0);
    assertEquals(
        GlueExample.regression(
            0,
            "A man with a hard hat is dancing.",
            "A man wearing a hard hat is dancing.",
            5.0f,
            2),
        sts);
    GlueExample rte = GlueReader.of(GlueTask.RTE).readSplit(glue, "dev").examples().get(0);
    assertEquals(1, rte.label()); // not_entailment
    assertEquals("Christopher Reeve had an accident.", rte.textB());
    GlueExample qnli = GlueReader.of(GlueTask.QNLI).readSplit(glue, "dev").examples().get(0);
    assertEquals(0, qnli.label()); // entailment
    GlueExample cola = GlueReader.of(GlueTask.COLA).readSplit(glue, "dev").examples().get(0);
    assertEquals(
        GlueExample.classification(
            0, "The sailors rode the breeze clear of the rocks.", null, 1, 1),
        cola);
  }

  /**
   * The byte path (Hadoop streams) and the text path agree, BOM and missing final newline included.
   */
  @Test
  void streamAndReaderPathsAgree() throws Exception {
    for (GlueTask task : new GlueTask[] {GlueTask.MRPC, GlueTask.COLA, GlueTask.STSB}) {
      Path file = glue.resolve(task.dirName()).resolve(task.fileName("dev"));
      GlueData bytes = GlueReader.of(task).read("dev", file);
      try (var reader = Files.newBufferedReader(file)) {
        GlueData text = GlueReader.of(task).read("dev", reader, file.toString());
        assertEquals(bytes.examples(), text.examples(), task.dirName());
      }
    }
  }

  /** Prints, does not assert: timing belongs to benchmarks, not to unit tests. */
  @Test
  void readSpeed() {
    GlueReader reader = GlueReader.of(GlueTask.SST2);
    GlueData d = null;
    double ms = Double.MAX_VALUE;
    for (int i = 0; i < 5; i++) { // best of 5: the first rounds include JIT compilation
      long t0 = System.nanoTime();
      d = reader.readSplit(glue, "train");
      ms = Math.min(ms, (System.nanoTime() - t0) / 1e6);
    }
    assertEquals(67349, d.size());
    System.out.printf(
        "GLUE read: SST-2 train, %d rows in %.1f ms, best of 5 (%.0f rows/s)%n",
        d.size(), ms, d.size() / ms * 1e3);
  }

  /** The majority-class baselines GLUE papers quote: MRPC dev 68.4 acc / 81.2 F1, CoLA MCC 0. */
  @Test
  void majorityBaselines() {
    GlueData mrpc = GlueReader.of(GlueTask.MRPC).readSplit(glue, "dev");
    Map<String, Double> m =
        GlueMetrics.compute(GlueTask.MRPC, new int[mrpc.size()], mrpc.labelIds());
    assertEquals(129.0 / 408, m.get("acc"), 1e-12); // predicting 0
    assertEquals(0.0, m.get("f1"));
    int[] ones = new int[mrpc.size()];
    java.util.Arrays.fill(ones, 1);
    Map<String, Double> m1 = GlueMetrics.compute(GlueTask.MRPC, ones, mrpc.labelIds());
    assertEquals(279.0 / 408, m1.get("acc"), 1e-12);
    assertEquals(558.0 / 687, m1.get("f1"), 1e-12);
    GlueData cola = GlueReader.of(GlueTask.COLA).readSplit(glue, "dev");
    assertEquals(721, java.util.Arrays.stream(cola.labelIds()).sum());
    int[] allAcceptable = new int[cola.size()];
    java.util.Arrays.fill(allAcceptable, 1);
    assertEquals(
        0.0, GlueMetrics.compute(GlueTask.COLA, allAcceptable, cola.labelIds()).get("mcc"));
  }
}
