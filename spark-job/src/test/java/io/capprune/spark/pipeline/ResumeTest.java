package io.capprune.spark.pipeline;

import static io.capprune.spark.pipeline.PipelineFixture.assertCommitted;
import static io.capprune.spark.pipeline.PipelineFixture.cli;
import static io.capprune.spark.pipeline.PipelineFixture.cliOk;
import static io.capprune.spark.pipeline.PipelineFixture.committedSteps;
import static io.capprune.spark.pipeline.PipelineFixture.copyTree;
import static io.capprune.spark.pipeline.PipelineFixture.delete;
import static io.capprune.spark.pipeline.PipelineFixture.fingerprint;
import static io.capprune.spark.pipeline.PipelineFixture.group;
import static io.capprune.spark.pipeline.PipelineFixture.json;
import static io.capprune.spark.pipeline.PipelineFixture.jsonLines;
import static io.capprune.spark.pipeline.PipelineFixture.nonZero;
import static io.capprune.spark.pipeline.PipelineFixture.snapshotTensors;
import static io.capprune.spark.pipeline.PipelineFixture.steps;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.tensor.HostTensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.LongStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resume after a driver died: a complete run A, then a copy B cut back to what storage holds when
 * the driver is killed while writing the third snapshot (two committed, the third without its
 * marker and truncated, nothing after). {@code prune --resume} must finish B like A. Also the
 * guards: {@code prune} without --resume is refused and changes nothing, --overwrite starts again.
 */
class ResumeTest {
  static final int PRUNE_EPOCHS = 4;
  static final long TOTAL = PRUNE_EPOCHS * (long) PipelineFixture.STEPS_PER_EPOCH;

  @TempDir static Path tmp;
  static Path a;
  static List<String> settings;

  @BeforeAll
  static void completeRun() {
    a = tmp.resolve("a");
    settings = PipelineFixture.settings(tmp.resolve("inputs"), PRUNE_EPOCHS);
    cliOk("run", settings, "--output", a.toString());
  }

  @Test
  void resumeRewritesTheHalfWrittenSnapshotAndFinishesLikeTheFullRun() throws IOException {
    assertEquals(List.of(8L, 16L, 24L, 32L), committedSteps(a.resolve("snapshots")));
    Path b = tmp.resolve("b");
    copyTree(a, b);
    Path snapshots = b.resolve("snapshots");
    delete(snapshots.resolve("32"));
    // The driver died while writing snapshot 24: its tensors half there, no marker.
    Path half = snapshots.resolve("24");
    delete(half.resolve("_COMMITTED"));
    byte[] full = Files.readAllBytes(a.resolve("snapshots/24/state.safetensors"));
    delete(half.resolve("state.safetensors"));
    Files.write(half.resolve("state.safetensors"), java.util.Arrays.copyOf(full, full.length / 2));
    for (String f :
        List.of("_PRUNED", "model", "metrics.json", "sparsity.json", "summary.txt", "plots")) {
      delete(b.resolve(f));
    }
    assertEquals(List.of(8L, 16L), committedSteps(snapshots));
    Map<String, String> kept = new java.util.TreeMap<>(fingerprint(snapshots));
    kept.keySet().removeIf(k -> k.startsWith("24"));

    // Nothing final to export yet (evaluate would score the last committed snapshot, step 16).
    PipelineFixture.Result early = cli("export", settings, "--output", b.toString());
    assertEquals(1, early.code());
    assertTrue(
        early
            .err()
            .contains("file:" + snapshots + " holds no final snapshot: run the prune stage first"),
        early.err());

    cliOk("prune", settings, "--output", b.toString(), "--resume");

    assertEquals(List.of(8L, 16L, 24L, 32L), committedSteps(snapshots));
    Map<String, String> after = fingerprint(snapshots);
    kept.forEach((file, print) -> assertEquals(print, after.get(file), "resume touched " + file));
    for (long step : List.of(24L, 32L)) {
      Path dir = snapshots.resolve(Long.toString(step));
      assertCommitted(dir);
      assertEquals(
          Files.size(a.resolve("snapshots/" + step + "/state.safetensors")),
          Files.size(dir.resolve("state.safetensors")),
          dir + " was not rewritten in full");
    }
    assertEquals("step " + TOTAL, Files.readString(b.resolve("_PRUNED")).trim());

    // Same end: step count, final sparsity, every matrix's mask size. The run is seeded and the
    // batches are a function of (seed, epoch), so the masks and weights come out the same too.
    JsonNode stateA = json(a.resolve("snapshots/32/state.json"));
    JsonNode stateB = json(snapshots.resolve("32/state.json"));
    assertEquals(TOTAL, stateB.get("step").asLong());
    assertTrue(stateB.get("final").asBoolean());
    assertEquals(stateA.get("sparsity").asDouble(), stateB.get("sparsity").asDouble(), 0);
    Map<String, HostTensor> finalA = snapshotTensors(a.resolve("snapshots/32"));
    Map<String, HostTensor> finalB = snapshotTensors(snapshots.resolve("32"));
    Map<String, HostTensor> masksA = group(finalA, "mask/");
    Map<String, HostTensor> masksB = group(finalB, "mask/");
    assertEquals(masksA.keySet(), masksB.keySet());
    for (String n : masksA.keySet()) {
      assertEquals(nonZero(masksA.get(n).data()), nonZero(masksB.get(n).data()), n);
    }
    assertResumedLikeA(finalA, finalB);

    // metrics.jsonl: A's records up to the snapshot, then the resumed run's, no step twice.
    List<String> linesA = Files.readAllLines(a.resolve("metrics.jsonl"));
    List<String> linesB = Files.readAllLines(b.resolve("metrics.jsonl"));
    List<JsonNode> recordsB = jsonLines(b.resolve("metrics.jsonl"));
    assertEquals(
        LongStream.rangeClosed(1, TOTAL / 4).map(i -> 4 * i).boxed().toList(), steps(recordsB));
    assertEquals(
        linesA.subList(0, 4),
        linesB.subList(0, 4),
        "records up to step 16 are the first attempt's");
    assertNotEquals(linesA.get(4), linesB.get(4), "step 20 was logged again by the resumed run");

    // The resumed output evaluates and exports like any other.
    cliOk("evaluate", settings, "--output", b.toString());
    cliOk("export", settings, "--output", b.toString());
    JsonNode metrics = json(b.resolve("metrics.json"));
    assertEquals(TOTAL, metrics.get("pruned_step").asLong());
    List<String> snapshotKeys = new ArrayList<>();
    metrics.get("snapshots").fieldNames().forEachRemaining(snapshotKeys::add);
    assertEquals(List.of("8", "16", "24", "32"), snapshotKeys);
    assertTrue(metrics.get("teacher").get("acc").asDouble() > 0.7);
    JsonNode sparsityA = json(a.resolve("sparsity.json"));
    JsonNode sparsityB = json(b.resolve("sparsity.json"));
    assertEquals(sparsityA.get("sparsity").asDouble(), sparsityB.get("sparsity").asDouble(), 0);
    assertEquals(sparsityA.get("matrices"), sparsityB.get("matrices"));
    var model = CheckpointStore.read(b.resolve("model").toString());
    for (JsonNode m : sparsityB.get("matrices")) {
      assertEquals(m.get("kept").asLong(), nonZero(model.tensor(m.get("name").asText()).data()));
    }
    assertTrue(
        Files.readString(b.resolve("summary.txt"))
            .contains(
                String.format(
                    java.util.Locale.ROOT, "%.2f%%", 100 * sparsityB.get("sparsity").asDouble())));
  }

  /**
   * The resumed run sees the same batches, dropout seeds and SnC slices (rebuilt from the stored
   * snapshots) as the uninterrupted one.
   */
  private static void assertResumedLikeA(
      Map<String, HostTensor> finalA, Map<String, HostTensor> finalB) {
    for (String prefix : List.of("mask/", "weight/", "score/")) {
      Map<String, HostTensor> ga = group(finalA, prefix);
      Map<String, HostTensor> gb = group(finalB, prefix);
      for (String n : ga.keySet()) {
        assertArrayEquals(ga.get(n).data(), gb.get(n).data(), 1e-5f, prefix + n);
      }
    }
  }

  @Test
  void pruneWithoutResumeIsRefusedAndChangesNothing() throws IOException {
    Map<String, String> before = fingerprint(a);

    PipelineFixture.Result again = cli("prune", settings, "--output", a.toString());
    assertEquals(1, again.code());
    assertTrue(again.err().contains("cap-prune: prune failed: "), again.err());
    assertTrue(
        again
            .err()
            .contains(
                "/snapshots holds snapshots of an earlier run;"
                    + " pass --resume to continue it or --overwrite to start again"),
        again.err());
    assertEquals(before, fingerprint(a), "a refused prune changed the output");

    // Another method into the same output: refused before Spark starts.
    PipelineFixture.Result other =
        cli("prune", settings, "--output", a.toString(), "--conf", "prune.method=movement");
    assertEquals(1, other.code());
    // (the location is printed as given, so an existing local directory ends in '/')
    assertTrue(
        java.util.regex.Pattern.compile(
                "output directory file:"
                    + java.util.regex.Pattern.quote(a.toString())
                    + "/? already holds another run \\{")
            .matcher(other.err())
            .find(),
        other.err());
    assertTrue(other.err().contains("method=cap-movement"), other.err());
    assertTrue(
        other.err().contains("; choose another cap.output, or pass --overwrite to replace it"),
        other.err());
    assertEquals(before, fingerprint(a), "a refused run changed the output");
  }

  @Test
  void overwriteStartsAgain() throws IOException {
    Path c = tmp.resolve("c");
    copyTree(a, c);
    String createdBefore = json(c.resolve("run.json")).get("created").asText();
    // --overwrite empties the whole directory, teacher included: the teacher comes from elsewhere.
    List<String> s = new ArrayList<>(PipelineFixture.settings(tmp.resolve("inputs"), 2));
    s.add("teacher=\"" + a.resolve("teacher") + "\"");
    cliOk("prune", s, "--output", c.toString(), "--overwrite");

    assertNotEquals(createdBefore, json(c.resolve("run.json")).get("created").asText());
    assertEquals(List.of(8L, 16L), committedSteps(c.resolve("snapshots")));
    try (var dirs = Files.list(c.resolve("snapshots"))) {
      assertEquals(2, dirs.count(), "snapshots of the old run survived");
    }
    JsonNode last = json(c.resolve("snapshots/16/state.json"));
    assertTrue(last.get("final").asBoolean());
    assertEquals(16, last.get("total_steps").asLong());
    assertEquals(List.of(4L, 8L, 12L, 16L), steps(jsonLines(c.resolve("metrics.jsonl"))));
    assertEquals("step 16", Files.readString(c.resolve("_PRUNED")).trim());
    for (String gone :
        List.of("teacher", "model", "metrics.json", "sparsity.json", "summary.txt", "finetune")) {
      assertFalse(Files.exists(c.resolve(gone)), gone + " of the old run survived --overwrite");
    }
  }
}
