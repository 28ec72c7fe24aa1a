package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.testing.TestModels;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Native memory must stay flat over many steps when each step runs in a closed sub-manager. */
class NativeMemoryTest {

  @Test
  void twoHundredForwardBackwardStepsDoNotGrow() throws IOException {
    DjlRuntime.start(2);
    BertConfig c = TestModels.tiny(2);
    Map<String, HostTensor> host = BertInit.init(c, 1);
    String maskedName = "encoder.layer.0.intermediate.dense.weight";
    try (NDManager base = NDManager.newBaseManager()) {
      Map<String, NDArray> stored = NDArrays.toNDArrays(base, host, DataType.FLOAT32);
      for (NDArray p : stored.values()) {
        p.setRequiresGradient(true);
      }
      NDArray mask = base.ones(stored.get(maskedName).getShape());
      BertForSequenceClassification model = new BertForSequenceClassification(c);
      Random rng = new Random(3);
      int baseline = -1;
      long rssAfterWarmup = 0;
      long t0 = System.currentTimeMillis();
      for (int step = 0; step < 250; step++) {
        if (step == 100) {
          baseline = base.getManagedArrays().size();
          rssAfterWarmup = rssKb();
        }
        if (step % 50 == 0) {
          System.out.printf("NativeMemoryTest: step %d, %d arrays, RSS %d MB, %d ms%n", step,
              base.getManagedArrays().size(), rssKb() / 1024, System.currentTimeMillis() - t0);
        }
        float gradSum = step(model, c, base, stored, maskedName, mask, rng);
        assertTrue(Float.isFinite(gradSum) && gradSum > 0, "step " + step);
      }
      int after = base.getManagedArrays().size();
      long rssAfter = rssKb();
      System.out.printf("NativeMemoryTest: arrays in base manager %d -> %d, RSS %d MB -> %d MB"
          + " over 150 steps%n", baseline, after, rssAfterWarmup / 1024, rssAfter / 1024);
      assertEquals(stored.size() + 1, baseline, "only the parameters and the mask stay");
      assertEquals(baseline, after, "arrays leaked into the base manager");
      // The array count above is the exact leak check; RSS also moves with the allocator's arenas
      // and the JIT on a loaded machine, so it only guards against gross native leaks.
      assertTrue(rssAfter - rssAfterWarmup < 48 * 1024,
          "RSS grew by " + (rssAfter - rssAfterWarmup) / 1024 + " MB over 150 steps");
    }
  }

  /** One training step as an executor runs it: everything it creates dies with its scope. */
  private static float step(BertForSequenceClassification model, BertConfig c, NDManager base,
      Map<String, NDArray> stored, String maskedName, NDArray mask, Random rng) {
    try (NDManager scope = base.newSubManager()) {
      int b = 4;
      int t = 12;
      int[][] ids = new int[b][t];
      int[][] am = new int[b][t];
      for (int i = 0; i < b; i++) {
        int len = 3 + rng.nextInt(t - 3);
        for (int j = 0; j < len; j++) {
          ids[i][j] = rng.nextInt(c.vocabSize());
          am[i][j] = 1;
        }
      }
      Map<String, NDArray> params = new HashMap<>(stored);
      NDArray detached = stored.get(maskedName).stopGradient();
      detached.attach(scope); // made from a stored parameter, so born in the base manager
      NDArray effective = detached.mul(mask);
      effective.setRequiresGradient(true);
      params.put(maskedName, effective);
      float sum = 0;
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        BertOutputs out = model.forward(params, BertInputs.of(scope, ids, null, am), true, null);
        gc.backward(out.logits().logSoftmax(1).get(":, 0").neg().mean());
      }
      for (NDArray p : params.values()) {
        NDArray g = p.getGradient();
        g.attach(scope);
        sum += g.abs().sum().getFloat();
        g.subi(g); // DJL does not zero accumulated gradients between steps
      }
      return sum;
    }
  }

  private static long rssKb() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    throw new IllegalStateException("no VmRSS in /proc/self/status");
  }
}
