package io.capprune.spark.pipeline;

import static io.capprune.spark.pipeline.PipelineFixture.cliOk;
import static io.capprune.spark.pipeline.PipelineFixture.committedSteps;
import static io.capprune.spark.pipeline.PipelineFixture.copyTree;
import static io.capprune.spark.pipeline.PipelineFixture.delete;
import static io.capprune.spark.pipeline.PipelineFixture.group;
import static io.capprune.spark.pipeline.PipelineFixture.json;
import static io.capprune.spark.pipeline.PipelineFixture.jsonLines;
import static io.capprune.spark.pipeline.PipelineFixture.snapshotTensors;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Structured CAP end to end in local mode on the demo model (2 layers x 4 heads, FFN 256): a
 * three-step sequence (25, 50, 75 % of heads and neurons, one retraining epoch each), the export of
 * the physically smaller model, resume in the middle of the sequence, and the baseline without
 * contrastive terms.
 */
class StructuredPipelineTest {
  static final List<Long> SNAPSHOTS = List.of(8L, 16L, 24L);

  @TempDir static Path tmp;
  static Path a;
  static List<String> settings;

  @BeforeAll
  static void completeRun() {
    a = tmp.resolve("a");
    settings = new ArrayList<>(PipelineFixture.settings(tmp.resolve("inputs"), 1));
    settings.addAll(
        List.of(
            "prune.method=cap-structured",
            "structured.head-fractions=[0.25, 0.5, 0.75]",
            "structured.neuron-fractions=[0.25, 0.5, 0.75]",
            "structured.retrain-epochs=1",
            "structured.importance-batch-size=16"));
    cliOk("run", settings, "--output", a.toString());
  }

  @Test
  void everyStepPrunesTheCumulativeCountAndKeepsAHeadPerLayer() throws IOException {
    assertEquals(SNAPSHOTS, committedSteps(a.resolve("snapshots")));
    int[] headsKept = {6, 4, 2};
    int[] neuronsKept = {384, 256, 128};
    for (int i = 0; i < 3; i++) {
      JsonNode state = json(a.resolve("snapshots/" + SNAPSHOTS.get(i) + "/state.json"));
      JsonNode st = state.get("structured");
      assertEquals(i + 1, st.get("step").asInt());
      int heads = 0;
      int neurons = 0;
      for (JsonNode h : st.get("heads_kept")) {
        assertTrue(h.asInt() >= 1, "a layer lost all heads: " + st);
        heads += h.asInt();
      }
      for (JsonNode n : st.get("neurons_kept")) {
        neurons += n.asInt();
      }
      assertEquals(headsKept[i], heads, st.toString());
      assertEquals(neuronsKept[i], neurons, st.toString());
      assertEquals(i == 2, state.get("final").asBoolean());
      assertTrue(state.get("dev").has("acc"), "dev metric after step " + (i + 1));
      // the element masks of the snapshot are the unit masks: o-dense columns of pruned heads are 0
      Map<String, HostTensor> masks =
          group(snapshotTensors(a.resolve("snapshots/" + SNAPSHOTS.get(i))), "mask/");
      long liveColumns = 0;
      for (int l = 0; l < 2; l++) {
        HostTensor o = masks.get("encoder.layer." + l + ".attention.output.dense.weight");
        for (int c = 0; c < 64; c++) {
          liveColumns += o.data()[c] != 0f ? 1 : 0;
        }
      }
      assertEquals(headsKept[i] * 16L, liveColumns);
    }
    // Retraining logged its own steps per pruning step, with the contrastive terms.
    List<JsonNode> records = jsonLines(a.resolve("structured/step-2/metrics.jsonl"));
    assertFalse(records.isEmpty());
    assertTrue(
        records.get(records.size() - 1).has("snc"), records.get(records.size() - 1).toString());
    assertEquals(3, json(a.resolve("structured.json")).get("steps").size());
    // The whole run's log: phases renumbered into one step sequence, a dev metric per phase.
    List<JsonNode> all = jsonLines(a.resolve("metrics.jsonl"));
    assertEquals(24, all.get(all.size() - 1).get("step").asLong());
    long withDev = all.stream().filter(r -> r.has("dev") && r.get("dev").size() > 0).count();
    assertEquals(3, withDev);
    for (int i = 1; i < all.size(); i++) {
      assertTrue(all.get(i).get("step").asLong() > all.get(i - 1).get("step").asLong());
    }
    assertTrue(
        Files.readString(a.resolve("summary.txt")).contains("24 of 24"),
        Files.readString(a.resolve("summary.txt")));
    assertTrue(Files.exists(a.resolve("plots/loss.png")));
  }

  @Test
  void exportIsPhysicallySmallerAndGivesTheMaskedModelsLogits() throws IOException {
    HfCheckpoint smaller = CheckpointStore.read(a.resolve("model").toString());
    BertConfig c = smaller.config();
    int pruned = c.prunedHeads().values().stream().mapToInt(List::size).sum();
    assertEquals(6, pruned);
    String configJson = Files.readString(a.resolve("model/config.json"));
    assertTrue(configJson.contains("\"pruned_heads\""), configJson);
    int neurons = 0;
    for (int l = 0; l < c.numHiddenLayers(); l++) {
      neurons += c.intermediateSizeOf(l);
      assertEquals(
          c.headsInLayer(l) * 16,
          smaller.tensor("encoder.layer." + l + ".attention.self.query.weight").shape()[0]);
    }
    assertEquals(128, neurons);

    Path last = a.resolve("snapshots/24");
    Map<String, HostTensor> state = snapshotTensors(last);
    Map<String, HostTensor> w = group(state, "weight/");
    Map<String, HostTensor> m = group(state, "mask/");
    LinkedHashMap<String, HostTensor> masked = new LinkedHashMap<>();
    w.forEach(
        (name, t) -> {
          HostTensor e = t.copy();
          HostTensor mask = m.get(name);
          if (mask != null) {
            for (int i = 0; i < e.data().length; i++) {
              e.data()[i] *= mask.data()[i];
            }
          }
          masked.put(name, e);
        });
    long dense = masked.values().stream().mapToLong(HostTensor::numel).sum();
    assertTrue(smaller.parameterCount() < dense, smaller.parameterCount() + " vs " + dense);
    BertConfig full =
        c.toBuilder()
            .intermediateSize(256)
            .prunedHeads(Map.of())
            .layerIntermediateSizes(List.of())
            .build();
    float[] maskedLogits = logits(full, masked);
    float[] smallerLogits = logits(c, smaller.tensors());
    double max = 0;
    for (int i = 0; i < maskedLogits.length; i++) {
      max = Math.max(max, Math.abs(maskedLogits[i] - smallerLogits[i]));
    }
    assertTrue(max <= 1e-4, "max |logit difference| " + max);

    PipelineFixture.Result inspect = cliOk("inspect", List.of(), a.resolve("model").toString());
    assertTrue(inspect.out().contains("heads kept"), inspect.out());
    assertTrue(inspect.out().contains("pruned_heads"), inspect.out());
  }

  static float[] logits(BertConfig c, Map<String, HostTensor> weights) {
    DjlRuntime.start(1);
    SplittableRandom rng = new SplittableRandom(5);
    int b = 6;
    int t = 20;
    int[][] ids = new int[b][t];
    int[][] types = new int[b][t];
    int[][] mask = new int[b][t];
    for (int i = 0; i < b; i++) {
      int len = 5 + rng.nextInt(t - 5);
      for (int j = 0; j < len; j++) {
        ids[i][j] = 1 + rng.nextInt(c.vocabSize() - 1);
        mask[i][j] = 1;
      }
    }
    try (NDManager m = NDManager.newBaseManager()) {
      Map<String, NDArray> params = NDArrays.toNDArrays(m, weights, DataType.FLOAT32);
      BertInputs in = BertInputs.of(m, ids, types, mask);
      return new BertForSequenceClassification(c)
          .forward(params, in, false, null)
          .logits()
          .toFloatArray();
    }
  }

  @Test
  void resumeInTheMiddleOfTheSequenceEndsLikeTheUninterruptedRun() throws IOException {
    Path b = tmp.resolve("b");
    copyTree(a, b);
    delete(b.resolve("snapshots/24"));
    for (String f :
        List.of(
            "_PRUNED",
            "model",
            "metrics.json",
            "sparsity.json",
            "summary.txt",
            "structured.json")) {
      delete(b.resolve(f));
    }
    assertEquals(List.of(8L, 16L), committedSteps(b.resolve("snapshots")));
    cliOk("prune", settings, "--output", b.toString(), "--resume");
    assertEquals(SNAPSHOTS, committedSteps(b.resolve("snapshots")));
    JsonNode stA = json(a.resolve("snapshots/24/state.json")).get("structured");
    JsonNode stB = json(b.resolve("snapshots/24/state.json")).get("structured");
    assertEquals(stA.get("pruned_heads"), stB.get("pruned_heads"));
    assertEquals(stA.get("pruned_neurons"), stB.get("pruned_neurons"));
    assertEquals(3, stB.get("step").asInt());
    Map<String, HostTensor> wa = group(snapshotTensors(a.resolve("snapshots/24")), "weight/");
    Map<String, HostTensor> wb = group(snapshotTensors(b.resolve("snapshots/24")), "weight/");
    for (String n : wa.keySet()) {
      assertArrayEquals(wa.get(n).data(), wb.get(n).data(), 1e-5f, n);
    }
    assertTrue(Files.exists(b.resolve("_PRUNED")));
  }

  @Test
  void baselineWithoutContrastiveTermsReusesTheTeacher() throws IOException {
    Path out = tmp.resolve("baseline");
    List<String> s = new ArrayList<>(settings);
    s.addAll(
        List.of(
            "prune.method=structured",
            "teacher=\"" + a.resolve("teacher") + "\"",
            "structured.head-fractions=[0.5]",
            "structured.neuron-fractions=[0.5]",
            "structured.export-ffn=padded"));
    cliOk("run", s, "--output", out.toString());
    List<JsonNode> records = jsonLines(out.resolve("structured/step-1/metrics.jsonl"));
    JsonNode last = records.get(records.size() - 1);
    assertTrue(last.has("kd") && !last.has("snc") && !last.has("prc"), last.toString());
    HfCheckpoint model = CheckpointStore.read(out.resolve("model").toString());
    assertEquals(4, model.config().prunedHeads().values().stream().mapToInt(List::size).sum());
    // padded: one intermediate_size for every layer, as Hugging Face expects
    assertTrue(model.config().layerIntermediateSizes().isEmpty());
    assertTrue(
        model.config().intermediateSize() >= 128 && model.config().intermediateSize() <= 256);
    assertTrue(json(out.resolve("metrics.json")).get("pruned").has("acc"));
  }
}
