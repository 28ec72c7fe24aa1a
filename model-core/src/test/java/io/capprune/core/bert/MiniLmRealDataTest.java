package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The forward pass on the real all-MiniLM-L6-v2 against onnxruntime's outputs (../shared/data). */
@Tag("realdata")
class MiniLmRealDataTest {

  static Path dir;
  static BertConfig config;
  static Map<String, HostTensor> weights;

  @BeforeAll
  static void load() throws Exception {
    DjlRuntime.start(2);
    dir = Path.of(System.getProperty("capprune.sharedData"), "models", "all-MiniLM-L6-v2");
    config =
        BertConfig.parse(
            Files.readString(dir.resolve("config.json")), dir.resolve("config.json").toString());
    weights = TestSafetensors.readF32(dir.resolve("model.safetensors"));
  }

  @Test
  void lastHiddenStateMatchesOnnxRuntime() throws Exception {
    assertEquals(101, weights.size());
    JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected-outputs.json").toFile());
    JsonNode examples = expected.get("examples");
    int b = examples.size();
    int t = expected.get("max_length").asInt();
    int[][] ids = new int[b][t];
    int[][] mask = new int[b][t];
    for (int n = 0; n < b; n++) {
      for (int i = 0; i < t; i++) {
        ids[n][i] = examples.get(n).get("input_ids").get(i).asInt();
        mask[n][i] = examples.get(n).get("attention_mask").get(i).asInt();
      }
    }
    try (NDManager m = NDManager.newBaseManager()) {
      Map<String, NDArray> params = NDArrays.toNDArrays(m, weights, DataType.FLOAT32);
      BertOutputs out =
          new BertForSequenceClassification(config)
              .forward(params, BertInputs.of(m, ids, null, mask), false, null);
      assertNull(out.pooledOutput(), "MiniLM has no pooler");
      assertNull(out.logits());
      float[] hidden = out.lastHiddenState().toFloatArray();
      int h = config.hiddenSize();
      double worstCls = 0;
      double worstMean = 0;
      double worstTok1 = 0;
      for (int n = 0; n < b; n++) {
        JsonNode ex = examples.get(n);
        int real = 0;
        double[] mean = new double[h];
        for (int i = 0; i < t; i++) {
          if (mask[n][i] == 1) {
            real++;
            for (int k = 0; k < h; k++) {
              mean[k] += hidden[(n * t + i) * h + k];
            }
          }
        }
        for (int k = 0; k < h; k++) {
          worstCls =
              Math.max(
                  worstCls,
                  Math.abs(
                      hidden[n * t * h + k] - ex.get("last_hidden_state_cls").get(k).asDouble()));
          worstMean =
              Math.max(
                  worstMean,
                  Math.abs(mean[k] / real - ex.get("last_hidden_state_mean").get(k).asDouble()));
        }
        for (int k = 0; k < 8; k++) {
          worstTok1 =
              Math.max(
                  worstTok1,
                  Math.abs(
                      hidden[(n * t + 1) * h + k]
                          - ex.get("last_hidden_state_token1_first8").get(k).asDouble()));
        }
      }
      System.out.printf(
          "MiniLM vs onnxruntime, max abs diff: [CLS] %.2e, mean %.2e, token 1 %.2e%n",
          worstCls, worstMean, worstTok1);
      assertTrue(worstCls < 1e-4, "[CLS] max abs difference " + worstCls);
      assertTrue(worstMean < 1e-4, "mean max abs difference " + worstMean);
      assertTrue(worstTok1 < 1e-4, "token 1 max abs difference " + worstTok1);
    }
  }

  /** Prints (does not assert) forward+backward time of MiniLM at batch 32, sequence 128, on CPU. */
  @Test
  void benchmarkForwardBackwardBatch32Seq128() {
    BertConfig c = config.withNumLabels(2);
    Map<String, HostTensor> host = BertInit.fillMissing(c, weights, 1);
    int b = 32;
    int t = 128;
    Random rng = new Random(1);
    int[][] ids = new int[b][t];
    for (int[] row : ids) {
      for (int i = 0; i < t; i++) {
        row[i] = 1000 + rng.nextInt(20000);
      }
    }
    BertForSequenceClassification model = new BertForSequenceClassification(c);
    try (NDManager base = NDManager.newBaseManager()) {
      Map<String, NDArray> params = NDArrays.toNDArrays(base, host, DataType.FLOAT32);
      for (NDArray p : params.values()) {
        p.setRequiresGradient(true);
      }
      long[] ms = new long[4];
      for (int step = 0; step < ms.length; step++) {
        long start = System.nanoTime();
        try (NDManager scope = base.newSubManager()) {
          try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            BertOutputs out =
                model.forward(params, BertInputs.of(scope, ids, null, null), true, null);
            gc.backward(out.logits().logSoftmax(1).get(new NDIndex(":, 0")).neg().mean());
          }
          NDArray g = params.get("encoder.layer.0.attention.self.query.weight").getGradient();
          g.attach(scope);
          assertTrue(Float.isFinite(g.sum().getFloat()));
        }
        ms[step] = (System.nanoTime() - start) / 1_000_000;
      }
      System.out.printf(
          "MiniLM-L6 (22.7M params) forward+backward, batch %d, seq %d, %d threads:"
              + " %s ms per step (first is warm-up)%n",
          b, t, DjlRuntime.numThreads(), java.util.Arrays.toString(ms));
    }
  }
}
