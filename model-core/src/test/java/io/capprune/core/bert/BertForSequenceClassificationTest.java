package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.testing.TestModels;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class BertForSequenceClassificationTest {

  // Two sentences of 6 and 4 real tokens (row 1 padded), segment ids on row 0.
  static final int[][] IDS = {{2, 17, 45, 9, 3, 88}, {2, 61, 5, 3, 0, 0}};
  static final int[][] TYPES = {{0, 0, 0, 1, 1, 1}, {0, 0, 0, 0, 0, 0}};
  static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}};

  NDManager base;

  @BeforeAll
  static void engine() {
    DjlRuntime.start(2);
  }

  @BeforeEach
  void open() {
    base = NDManager.newBaseManager();
  }

  @AfterEach
  void close() {
    base.close();
  }

  static float[] values(NDArray a) {
    return a.toType(DataType.FLOAT32, false).toFloatArray();
  }

  static double maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length, "lengths");
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }

  private BertOutputs run(
      BertConfig c,
      Map<String, NDArray> params,
      NDManager scope,
      int[][] ids,
      int[][] types,
      int[][] mask,
      boolean training,
      StructuredMasks masks) {
    return new BertForSequenceClassification(c)
        .forward(params, BertInputs.of(scope, ids, types, mask), training, masks);
  }

  @Test
  void outputShapes() {
    BertConfig c = TestModels.tiny(2);
    Map<String, NDArray> params = NDArrays.toNDArrays(base, BertInit.init(c, 1), DataType.FLOAT32);
    try (NDManager scope = base.newSubManager()) {
      BertOutputs out = run(c, params, scope, IDS, TYPES, MASK, false, null);
      assertEquals(new Shape(2, 6, 32), out.lastHiddenState().getShape());
      assertEquals(new Shape(2, 32), out.pooledOutput().getShape());
      assertEquals(new Shape(2, 32), out.classifierInput().getShape());
      assertEquals(new Shape(2, 3), out.logits().getShape());
      assertEquals(DataType.FLOAT32, out.logits().getDataType());
      // eval: classifier input is the pooled output itself
      assertEquals(0.0, maxAbsDiff(values(out.pooledOutput()), values(out.classifierInput())));
    }
  }

  @Test
  void matchesPlainJavaReferenceWithin1e5() {
    for (int layers : new int[] {1, 2}) {
      BertConfig c = TestModels.tiny(layers);
      Map<String, HostTensor> host = TestModels.randomParams(c, 7);
      ReferenceBert ref = new ReferenceBert(c, host, IDS, TYPES, MASK);
      Map<String, NDArray> params = NDArrays.toNDArrays(base, host, DataType.FLOAT32);
      try (NDManager scope = base.newSubManager()) {
        BertOutputs out = run(c, params, scope, IDS, TYPES, MASK, false, null);
        float[] hidden = values(out.lastHiddenState());
        float[] pooled = values(out.pooledOutput());
        float[] logits = values(out.logits());
        double worst = 0;
        for (int n = 0; n < 2; n++) {
          for (int i = 0; i < 6; i++) {
            if (MASK[n][i] == 0) {
              continue; // HF's outputs at padded positions are not meaningful
            }
            for (int k = 0; k < 32; k++) {
              worst = Math.max(worst, Math.abs(hidden[(n * 6 + i) * 32 + k] - ref.hidden[n][i][k]));
            }
          }
          for (int k = 0; k < 32; k++) {
            worst = Math.max(worst, Math.abs(pooled[n * 32 + k] - ref.pooled[n][k]));
          }
          for (int k = 0; k < 3; k++) {
            worst = Math.max(worst, Math.abs(logits[n * 3 + k] - ref.logits[n][k]));
          }
        }
        assertTrue(worst < 1e-5, layers + " layer(s): max abs difference " + worst);
        // and the reference is not trivially small: logits of order 1
        assertTrue(Math.abs(ref.logits[0][0]) + Math.abs(ref.logits[1][2]) > 0.1);
      }
    }
  }

  @Test
  void paddingDoesNotChangeRealTokens() {
    BertConfig c = TestModels.tiny(2);
    Map<String, NDArray> params =
        NDArrays.toNDArrays(base, TestModels.randomParams(c, 3), DataType.FLOAT32);
    int[][] ids = {{2, 17, 45, 9}};
    int[][] padded = {{2, 17, 45, 9, 0, 0, 0}};
    int[][] paddedOther = {{2, 17, 45, 9, 55, 66, 77}}; // junk under the padding mask
    int[][] mask = {{1, 1, 1, 1, 0, 0, 0}};
    try (NDManager scope = base.newSubManager()) {
      BertOutputs a = run(c, params, scope, ids, null, null, false, null);
      BertOutputs b = run(c, params, scope, padded, null, mask, false, null);
      BertOutputs d = run(c, params, scope, paddedOther, null, mask, false, null);
      float[] real = values(a.lastHiddenState());
      float[] pb = values(b.lastHiddenState().get(new NDIndex(":, 0:4, :")));
      float[] pd = values(d.lastHiddenState().get(new NDIndex(":, 0:4, :")));
      assertTrue(maxAbsDiff(real, pb) < 1e-5, "padded: " + maxAbsDiff(real, pb));
      assertTrue(maxAbsDiff(real, pd) < 1e-5, "junk under padding: " + maxAbsDiff(real, pd));
      assertTrue(maxAbsDiff(values(a.logits()), values(b.logits())) < 1e-5);
      // Without the mask the padding tokens are attended to and the outputs move.
      BertOutputs unmasked = run(c, params, scope, padded, null, null, false, null);
      float[] pu = values(unmasked.lastHiddenState().get(new NDIndex(":, 0:4, :")));
      assertTrue(maxAbsDiff(real, pu) > 1e-3, "the mask must matter: " + maxAbsDiff(real, pu));
    }
  }

  @Test
  void evalIsDeterministicTrainingAppliesDropout() {
    BertConfig c = TestModels.tiny(2);
    Map<String, NDArray> params =
        NDArrays.toNDArrays(base, TestModels.randomParams(c, 3), DataType.FLOAT32);
    try (NDManager scope = base.newSubManager()) {
      float[] e1 = values(run(c, params, scope, IDS, TYPES, MASK, false, null).logits());
      float[] e2 = values(run(c, params, scope, IDS, TYPES, MASK, false, null).logits());
      assertArrayEquals(e1, e2, 0f);

      DjlRuntime.seed(11);
      BertOutputs t1 = run(c, params, scope, IDS, TYPES, MASK, true, null);
      float[] t2 = values(run(c, params, scope, IDS, TYPES, MASK, true, null).logits());
      assertTrue(maxAbsDiff(e1, values(t1.logits())) > 1e-3, "dropout must change the logits");
      assertTrue(maxAbsDiff(values(t1.logits()), t2) > 1e-3, "fresh dropout masks per call");
      DjlRuntime.seed(11);
      float[] t1again = values(run(c, params, scope, IDS, TYPES, MASK, true, null).logits());
      assertArrayEquals(values(t1.logits()), t1again, 0f, "same seed, same dropout");

      // classifier dropout: about p = 0.1 of the classifier input is zeroed, the rest scaled 1/0.9
      float[] pooled = values(t1.pooledOutput());
      float[] dropped = values(t1.classifierInput());
      int zeros = 0;
      for (int i = 0; i < pooled.length; i++) {
        if (dropped[i] == 0f) {
          zeros++;
        } else {
          assertEquals(pooled[i] / 0.9f, dropped[i], 1e-5f);
        }
      }
      assertTrue(zeros > 0 && zeros < 20, "dropped " + zeros + " of 64");
    }
  }

  @Test
  void gradientsReachEveryParameterIncludingFreshLeaves() {
    BertConfig c = TestModels.tiny(2);
    Map<String, HostTensor> host = TestModels.randomParams(c, 5);
    try (NDManager scope = base.newSubManager()) {
      Map<String, NDArray> stored = NDArrays.toNDArrays(base, host, DataType.FLOAT32);
      Map<String, NDArray> params = new HashMap<>(stored);
      // The movement-pruning pattern: the forward pass sees W*M as a fresh leaf.
      String masked = "encoder.layer.1.intermediate.dense.weight";
      NDArray mask =
          scope
              .randomUniform(0, 1, stored.get(masked).getShape())
              .gt(0.5)
              .toType(DataType.FLOAT32, false);
      NDArray effective = stored.get(masked).mul(mask);
      effective.attach(scope);
      params.put(masked, effective);
      for (NDArray p : params.values()) {
        p.setRequiresGradient(true);
      }
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        BertOutputs out = run(c, params, scope, IDS, TYPES, MASK, true, null);
        gc.backward(out.logits().square().sum().add(out.lastHiddenState().mean()));
      }
      for (Map.Entry<String, NDArray> e : params.entrySet()) {
        NDArray g = e.getValue().getGradient();
        g.attach(scope);
        assertEquals(e.getValue().getShape(), g.getShape(), e.getKey());
        double norm = g.abs().sum().getFloat();
        assertTrue(norm > 0 && Double.isFinite(norm), e.getKey() + " gradient norm " + norm);
      }
      // The gradient of a fresh leaf W*M is dense: also where M is 0 (movement pruning needs it).
      NDArray g = params.get(masked).getGradient();
      g.attach(scope);
      float nonZeroWhereMasked = g.mul(mask.neg().add(1)).abs().sum().getFloat();
      assertTrue(nonZeroWhereMasked > 0);
    }
  }

  @Test
  void float64GradientsMatchFiniteDifferences() {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> host = TestModels.randomParams(c, 9);
    String[] probes = {
      "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
      "embeddings.LayerNorm.weight", "encoder.layer.0.attention.self.query.weight",
      "encoder.layer.0.attention.self.key.bias", "encoder.layer.0.attention.self.value.weight",
      "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.LayerNorm.bias",
      "pooler.dense.weight", "classifier.bias"
    };
    try (NDManager scope = base.newSubManager()) {
      Map<String, NDArray> params = NDArrays.toNDArrays(scope, host, DataType.FLOAT64);
      NDArray weights = scope.randomNormal(new Shape(2, 3), DataType.FLOAT64);
      for (NDArray p : params.values()) {
        p.setRequiresGradient(true);
      }
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        BertOutputs out = run(c, params, scope, IDS, TYPES, MASK, false, null);
        assertEquals(DataType.FLOAT64, out.logits().getDataType());
        assertEquals(DataType.FLOAT64, out.lastHiddenState().getDataType());
        gc.backward(out.logits().mul(weights).sum());
      }
      for (String name : probes) {
        NDArray p = params.get(name);
        NDArray grad = p.getGradient();
        grad.attach(scope);
        // The entry with the largest gradient: a used row of the embeddings, a live unit.
        long flat = grad.abs().flatten().argMax().getLong();
        long[] idx =
            p.getShape().dimension() == 1
                ? new long[] {flat}
                : new long[] {flat / p.getShape().get(1), flat % p.getShape().get(1)};
        double analytic = grad.getDouble(idx);
        double h = 1e-6;
        double plus = perturbedLoss(c, params, name, idx, h, weights, scope);
        double minus = perturbedLoss(c, params, name, idx, -h, weights, scope);
        double numeric = (plus - minus) / (2 * h);
        assertEquals(
            numeric, analytic, 1e-6 * Math.max(1, Math.abs(numeric)), name + Arrays.toString(idx));
      }
    }
  }

  private double perturbedLoss(
      BertConfig c,
      Map<String, NDArray> params,
      String name,
      long[] idx,
      double h,
      NDArray weights,
      NDManager scope) {
    Map<String, NDArray> copy = new HashMap<>(params);
    NDArray p = params.get(name).stopGradient().duplicate();
    p.attach(scope);
    p.set(new NDIndex(idx), p.getDouble(idx) + h);
    copy.put(name, p);
    BertOutputs out = run(c, copy, scope, IDS, TYPES, MASK, false, null);
    return out.logits().mul(weights).sum().getDouble();
  }

  /**
   * Gradients must not depend on the garbage collector: DJL frees the Java buffers behind temporary
   * arrays (Number operands, arrays made from Java data) once their handles are closed, and
   * autograd would then read freed memory in backward (see NDArrays.scalar). Forward, then GC and
   * reuse of direct memory, then backward must give the same gradients as without.
   */
  @Test
  void gradientsSurviveGarbageCollectionBetweenForwardAndBackward() throws InterruptedException {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> host = TestModels.randomParams(c, 12);
    float[] clean = null;
    for (boolean pressure : new boolean[] {false, true, true}) {
      try (NDManager scope = base.newSubManager()) {
        Map<String, NDArray> params = NDArrays.toNDArrays(scope, host, DataType.FLOAT32);
        for (NDArray p : params.values()) {
          p.setRequiresGradient(true);
        }
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          BertOutputs out = run(c, params, scope, IDS, TYPES, MASK, false, null);
          if (pressure) {
            java.util.List<java.nio.ByteBuffer> junk = new java.util.ArrayList<>();
            for (int round = 0; round < 3; round++) {
              System.gc();
              Thread.sleep(20);
              for (int i = 0; i < 2000; i++) {
                junk.add(java.nio.ByteBuffer.allocateDirect(64).putFloat(0, 12345f));
              }
            }
          }
          gc.backward(out.logits().sum());
        }
        NDArray g = params.get("encoder.layer.0.attention.self.query.weight").getGradient();
        g.attach(scope);
        float[] grad = g.toFloatArray();
        if (clean == null) {
          clean = grad;
          assertTrue(maxAbsDiff(grad, new float[grad.length]) > 1e-4, "query gradient is non-zero");
        } else {
          assertArrayEquals(clean, grad, 1e-6f);
        }
      }
    }
  }

  @Test
  void float64MatchesFloat32() {
    BertConfig c = TestModels.tiny(2);
    Map<String, HostTensor> host = TestModels.randomParams(c, 4);
    try (NDManager scope = base.newSubManager()) {
      float[] f32 =
          values(
              run(
                      c,
                      NDArrays.toNDArrays(scope, host, DataType.FLOAT32),
                      scope,
                      IDS,
                      TYPES,
                      MASK,
                      false,
                      null)
                  .lastHiddenState());
      BertOutputs o64 =
          run(
              c,
              NDArrays.toNDArrays(scope, host, DataType.FLOAT64),
              scope,
              IDS,
              TYPES,
              MASK,
              false,
              null);
      assertEquals(DataType.FLOAT64, o64.lastHiddenState().getDataType());
      assertTrue(maxAbsDiff(f32, values(o64.lastHiddenState())) < 1e-4);
    }
  }

  @Test
  void headMaskAndNeuronMask() {
    BertConfig c = TestModels.tiny(2);
    Map<String, NDArray> params =
        NDArrays.toNDArrays(base, TestModels.randomParams(c, 8), DataType.FLOAT32);
    try (NDManager scope = base.newSubManager()) {
      float[] plain = values(run(c, params, scope, IDS, TYPES, MASK, false, null).logits());
      NDArray ones = scope.ones(new Shape(2, 4));
      NDArray neuronOnes = scope.ones(new Shape(2, 64));
      float[] withOnes =
          values(
              run(c, params, scope, IDS, TYPES, MASK, false, new StructuredMasks(ones, neuronOnes))
                  .logits());
      assertArrayEquals(plain, withOnes, 1e-6f);

      NDArray oneHeadOff = scope.ones(new Shape(2, 4));
      oneHeadOff.set(new NDIndex(1, 2), 0f);
      float[] headOff =
          values(
              run(c, params, scope, IDS, TYPES, MASK, false, StructuredMasks.heads(oneHeadOff))
                  .logits());
      assertTrue(maxAbsDiff(plain, headOff) > 1e-3, "masking head 2 of layer 1");

      NDArray someNeuronsOff = scope.ones(new Shape(2, 64));
      someNeuronsOff.set(new NDIndex("0, 0:8"), 0f);
      float[] neuronsOff =
          values(
              run(
                      c,
                      params,
                      scope,
                      IDS,
                      TYPES,
                      MASK,
                      false,
                      StructuredMasks.neurons(someNeuronsOff))
                  .logits());
      assertTrue(maxAbsDiff(plain, neuronsOff) > 1e-3, "masking 8 neurons of layer 0");

      // Masking a head equals removing its contribution: zeroing its rows of the value projection
      // (its context vector becomes 0, as with probabilities times 0).
      Map<String, NDArray> noHead = new HashMap<>(params);
      for (String part : new String[] {"weight", "bias"}) {
        String name = "encoder.layer.1.attention.self.value." + part;
        NDArray v = params.get(name).duplicate();
        v.attach(scope);
        v.set(new NDIndex("16:24"), 0f);
        noHead.put(name, v);
      }
      float[] pruned = values(run(c, noHead, scope, IDS, TYPES, MASK, false, null).logits());
      assertArrayEquals(headOff, pruned, 1e-5f);

      // The masks take gradients (first-order head/neuron importance).
      NDArray hm = scope.ones(new Shape(2, 4));
      NDArray nm = scope.ones(new Shape(2, 64));
      hm.setRequiresGradient(true);
      nm.setRequiresGradient(true);
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        BertOutputs out =
            run(c, params, scope, IDS, TYPES, MASK, false, new StructuredMasks(hm, nm));
        gc.backward(out.logits().sum());
      }
      NDArray hg = hm.getGradient();
      hg.attach(scope);
      NDArray ng = nm.getGradient();
      ng.attach(scope);
      assertTrue(hg.abs().min().getFloat() > 0, "every head has a non-zero importance");
      assertTrue(ng.abs().sum().getFloat() > 0);
    }
  }

  @Test
  void withoutPoolerAndClassifier() {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> host = TestModels.randomParams(c, 2);
    host.keySet().removeIf(k -> k.startsWith("pooler.") || k.startsWith("classifier."));
    Map<String, NDArray> params = NDArrays.toNDArrays(base, host, DataType.FLOAT32);
    try (NDManager scope = base.newSubManager()) {
      BertOutputs out = run(c, params, scope, IDS, TYPES, MASK, false, null);
      assertNull(out.pooledOutput());
      assertNull(out.logits());
      assertNotNull(out.classifierInput());
      float[] cls = values(out.lastHiddenState().get(new NDIndex(":, 0, :")));
      assertArrayEquals(cls, values(out.classifierInput()), 0f);
    }
  }

  @Test
  void badParametersAndInputsAreNamed() {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> host = TestModels.randomParams(c, 2);
    try (NDManager scope = base.newSubManager()) {
      Map<String, NDArray> params = NDArrays.toNDArrays(scope, host, DataType.FLOAT32);
      Map<String, NDArray> missing = new HashMap<>(params);
      missing.remove("encoder.layer.0.attention.self.key.bias");
      var e1 =
          assertThrows(
              IllegalArgumentException.class,
              () -> run(c, missing, scope, IDS, TYPES, MASK, false, null));
      assertEquals("missing parameter 'encoder.layer.0.attention.self.key.bias'", e1.getMessage());

      Map<String, NDArray> wrong = new HashMap<>(params);
      wrong.put("encoder.layer.0.output.dense.weight", scope.zeros(new Shape(64, 32)));
      var e2 =
          assertThrows(
              IllegalArgumentException.class,
              () -> run(c, wrong, scope, IDS, TYPES, MASK, false, null));
      assertEquals(
          "parameter 'encoder.layer.0.output.dense.weight' has shape (64, 32),"
              + " expected [32, 64]",
          e2.getMessage());

      Map<String, NDArray> mixed = new HashMap<>(params);
      mixed.put("pooler.dense.bias", scope.zeros(new Shape(32), DataType.FLOAT64));
      var e3 =
          assertThrows(
              IllegalArgumentException.class,
              () -> run(c, mixed, scope, IDS, TYPES, MASK, false, null));
      assertTrue(
          e3.getMessage().startsWith("parameter 'pooler.dense.bias' has type float64"),
          e3.getMessage());

      var e4 =
          assertThrows(
              IllegalArgumentException.class,
              () -> run(c, params, scope, new int[][] {{2, 100}}, null, null, false, null));
      assertEquals("inputIds holds token id 100 >= vocab_size 100", e4.getMessage());

      var e5 =
          assertThrows(
              IllegalArgumentException.class,
              () -> BertInputs.of(scope, new int[][] {{1, 2}, {3}}, null, null));
      assertEquals("inputIds row 1 has length 1, expected 2", e5.getMessage());
      var e6 =
          assertThrows(
              IllegalArgumentException.class,
              () -> BertInputs.of(scope, new int[][] {{1, 2}}, null, new int[][] {{1, 2}}));
      assertEquals("attentionMask[0][1] must be 0 or 1, got 2", e6.getMessage());
      var e7 =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  run(
                      c,
                      params,
                      scope,
                      IDS,
                      TYPES,
                      MASK,
                      false,
                      StructuredMasks.heads(scope.ones(new Shape(1, 3)))));
      assertEquals(
          "headMask has 3 heads for 'encoder.layer.0.attention.self.', the layer has 4",
          e7.getMessage());
    }
  }
}
