package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.bert.BertInit;
import io.capprune.core.optim.AdamW;
import io.capprune.core.optim.GradientClipper;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class DriverUpdateTest {

  private static final Map<String, int[]> SHAPES = BertInit.shapes(TestModels.driverUpdateShape());
  private static final String Q = "encoder.layer.0.attention.self.query.weight";
  private static final String Q_BIAS = "encoder.layer.0.attention.self.query.bias";
  private static final String LN = "encoder.layer.1.output.LayerNorm.weight";
  private static final String WORD = "embeddings.word_embeddings.weight";
  private static final String CLS = "classifier.weight";

  private static OptimizerConfig optimizer(double weightDecay, double maxGradNorm) {
    return new OptimizerConfig(
        0.01, 0.1, weightDecay, 0.9, 0.999, 1e-8, maxGradNorm, new LinearWarmupDecay(0, 10));
  }

  private static PruningConfig pruning(PruningCriterion c) {
    // w=1, no warmups, T=10: the threshold moves every step, so masks change every step.
    SparsitySchedule s =
        c == PruningCriterion.SOFT_MOVEMENT
            ? new SparsitySchedule(1, 0, 0, 10, 0.0, 0.6)
            : new SparsitySchedule(1, 0, 0, 10, 1.0, 0.2);
    return new PruningConfig(c, s, false, c == PruningCriterion.SOFT_MOVEMENT ? 30 : 0, true, 0);
  }

  private static LinkedHashMap<String, HostTensor> copy(Map<String, HostTensor> m) {
    LinkedHashMap<String, HostTensor> c = new LinkedHashMap<>();
    m.forEach((k, v) -> c.put(k, v.copy()));
    return c;
  }

  /**
   * The same step composed from the separate pieces, with materialised gradients: the fused update
   * must give bit-identical arrays.
   */
  private static void referenceStep(
      PruningConfig p,
      OptimizerConfig o,
      long t,
      Map<String, HostTensor> w,
      Map<String, HostTensor> s,
      Map<String, HostTensor> mask,
      Map<String, HostTensor> m,
      Map<String, HostTensor> v,
      Map<String, HostTensor> grads) {
    LinkedHashMap<String, float[]> gw = new LinkedHashMap<>();
    LinkedHashMap<String, float[]> gs = new LinkedHashMap<>();
    for (String name : w.keySet()) {
      if (ParameterNames.isEmbedding(name)) {
        continue;
      }
      float[] g = grads.get(name).data().clone();
      if (mask.containsKey(name)) {
        float[] md = mask.get(name).data();
        float[] wd = w.get(name).data();
        float[] sg = new float[g.length];
        for (int i = 0; i < g.length; i++) {
          sg[i] = g[i] * wd[i];
          g[i] = g[i] * md[i];
        }
        if (p.criterion().usesScores()) {
          gs.put(name, sg);
        }
      }
      gw.put(name, g);
    }
    if (p.criterion() == PruningCriterion.SOFT_MOVEMENT) {
      List<float[]> scores = new ArrayList<>();
      gs.keySet().forEach(n -> scores.add(s.get(n).data()));
      SoftMovementRegularizer.addGradient(scores, p.lambdaAt(t), new ArrayList<>(gs.values()));
    }
    List<float[]> all = new ArrayList<>(gw.values());
    all.addAll(gs.values());
    GradientClipper.clip(all, o.maxGradNorm());
    double lr = o.learningRate() * o.lrSchedule().multiplier(t);
    double slr = o.scoresLearningRate() * o.lrSchedule().multiplier(t);
    for (Map.Entry<String, float[]> e : gw.entrySet()) {
      String n = e.getKey();
      double wd = ParameterNames.isNoDecay(n) ? 0 : o.weightDecay();
      AdamW.update(
          w.get(n).data(),
          e.getValue(),
          1f,
          m.get(n).data(),
          v.get(n).data(),
          0,
          e.getValue().length,
          AdamW.coefficients(lr, o.beta1(), o.beta2(), o.epsilon(), wd, t + 1));
    }
    for (Map.Entry<String, float[]> e : gs.entrySet()) {
      String n = ParameterNames.scoresName(e.getKey());
      AdamW.update(
          s.get(e.getKey()).data(),
          e.getValue(),
          1f,
          m.get(n).data(),
          v.get(n).data(),
          0,
          e.getValue().length,
          AdamW.coefficients(slr, o.beta1(), o.beta2(), o.epsilon(), 0, t + 1));
    }
    double next = p.thresholdAt(t + 1);
    for (String n : mask.keySet()) {
      float[] md = mask.get(n).data();
      switch (p.criterion()) {
        case MAGNITUDE ->
            MaskComputer.topK(
                n, w.get(n).data(), true, (int) MaskComputer.keepCount(next, md.length), md);
        case MOVEMENT ->
            MaskComputer.topK(
                n, s.get(n).data(), false, (int) MaskComputer.keepCount(next, md.length), md);
        case SOFT_MOVEMENT -> MaskComputer.softThreshold(n, s.get(n).data(), next, md);
      }
    }
  }

  private static void assertSame(
      Map<String, HostTensor> expected, Map<String, HostTensor> actual, String what) {
    assertEquals(expected.keySet(), actual.keySet(), what);
    expected.forEach(
        (k, e) -> assertArrayEquals(e.data(), actual.get(k).data(), 0f, what + " " + k));
  }

  @ParameterizedTest
  @EnumSource(PruningCriterion.class)
  void fusedUpdateEqualsTheStepComposedFromItsParts(PruningCriterion criterion) {
    PruningConfig p = pruning(criterion);
    // Clip at 0.05 so clipping is active; weight decay on.
    OptimizerConfig o = optimizer(0.01, 0.05);
    DriverUpdate update = new DriverUpdate(p, o);
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    LinkedHashMap<String, HostTensor> w = copy(state.weights());
    LinkedHashMap<String, HostTensor> s = copy(state.scores());
    LinkedHashMap<String, HostTensor> mask = copy(state.masks());
    LinkedHashMap<String, HostTensor> m = copy(state.expAvg());
    LinkedHashMap<String, HostTensor> v = copy(state.expAvgSq());
    for (long t = 0; t < 4; t++) {
      LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 100 + t);
      UpdateSummary summary = update.apply(state, grads);
      referenceStep(p, o, t, w, s, mask, m, v, grads);
      assertSame(w, state.weights(), "weights step " + t);
      assertSame(s, state.scores(), "scores step " + t);
      assertSame(mask, state.masks(), "masks step " + t);
      assertSame(m, state.expAvg(), "exp_avg step " + t);
      assertSame(v, state.expAvgSq(), "exp_avg_sq step " + t);
      assertEquals(t, summary.step());
      assertEquals(t + 1, state.step());
      assertTrue(summary.clipCoefficient() < 1, "clipping active");
      assertEquals(0.05 / (summary.gradNorm() + 1e-6), summary.clipCoefficient(), 1e-12);
    }
  }

  @Test
  void magnitudeScoreInitMakesTheFirstMovementMasksMagnitudeMasks() {
    PruningConfig p =
        new PruningConfig(
            PruningCriterion.MOVEMENT, SparsitySchedule.constant(0.25, 10), false, 0, true, 0, 2.0);
    TrainingState state =
        new DriverUpdate(p, optimizer(0, 1e9))
            .initialState(TestModels.randomWeights(SHAPES, 0.5, 3));
    for (String name : state.scores().keySet()) {
      float[] w = state.weights().get(name).data();
      float[] s = state.scores().get(name).data();
      double mean = 0;
      for (float x : w) {
        mean += Math.abs(x) / w.length;
      }
      for (int i = 0; i < w.length; i++) {
        assertEquals(2.0 * Math.abs(w[i]) / mean, s[i], 1e-5 * (1 + s[i]), name + " score " + i);
      }
      // Kept = the int(0.25 n) largest |W|.
      float[] mask = state.masks().get(name).data();
      float[] sorted = new float[w.length];
      for (int i = 0; i < w.length; i++) {
        sorted[i] = Math.abs(w[i]);
      }
      Arrays.sort(sorted);
      int keep = (int) (0.25 * w.length);
      float cut = sorted[w.length - keep];
      assertEquals(keep, (int) countOnes(mask), name);
      for (int i = 0; i < w.length; i++) {
        assertEquals(
            Math.abs(w[i]) >= cut ? 1f : 0f,
            mask[i],
            name + " mask " + i + " |w| " + Math.abs(w[i]));
      }
    }
    // The reference's zero init leaves the scores at 0.
    TrainingState zero =
        new DriverUpdate(pruning(PruningCriterion.MOVEMENT), optimizer(0, 1e9))
            .initialState(TestModels.randomWeights(SHAPES, 0.5, 3));
    for (HostTensor scores : zero.scores().values()) {
      assertEquals(0, scores.numel() - scores.countZeros());
    }
    assertFalse(zero.scores().isEmpty());
  }

  @Test
  void magnitudeScoreInitIsRejectedForMethodsWithoutTopKScores() {
    for (PruningCriterion c :
        new PruningCriterion[] {PruningCriterion.SOFT_MOVEMENT, PruningCriterion.MAGNITUDE}) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  new PruningConfig(
                      c,
                      new SparsitySchedule(
                          1, 0, 0, 10, c == PruningCriterion.SOFT_MOVEMENT ? 0.0 : 1.0, 0.2),
                      false,
                      0,
                      true,
                      0,
                      1.0));
      assertTrue(e.getMessage().contains("score-init-magnitude"), e.getMessage());
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new PruningConfig(
                PruningCriterion.MOVEMENT,
                SparsitySchedule.constant(0.5, 10),
                false,
                0,
                true,
                0,
                -1));
  }

  @Test
  void maskedWeightsGetNoLossGradientAndScoresGetGTimesW() {
    // Keep half from step 0 on: scores all 0 tie, so the first half of every matrix by index is
    // kept.
    PruningConfig p =
        new PruningConfig(
            PruningCriterion.MOVEMENT, SparsitySchedule.constant(0.5, 10), false, 0, true, 0);
    DriverUpdate update = new DriverUpdate(p, optimizer(0, 1e9));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    float[] w0 = state.weights().get(Q).data().clone();
    float[] mask0 = state.masks().get(Q).data().clone();
    assertEquals(32, (int) countOnes(mask0));
    LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 5);
    UpdateSummary summary = update.apply(state, grads);
    assertEquals(1.0, summary.clipCoefficient());
    float[] g = grads.get(Q).data();
    float[] w1 = state.weights().get(Q).data();
    float[] mW = state.expAvg().get(Q).data();
    float[] mS = state.expAvg().get(ParameterNames.scoresName(Q)).data();
    for (int i = 0; i < w0.length; i++) {
      if (mask0[i] == 0f) {
        assertEquals(w0[i], w1[i], "pruned weight " + i + " must not move");
        assertEquals(0f, mW[i], "pruned weight " + i + " has no gradient");
      } else {
        assertEquals((float) (1 - 0.9) * g[i], mW[i], 1e-7, "kept weight " + i);
        assertNotEquals(w0[i], w1[i], "kept weight " + i + " moves");
      }
      // dL/dS = g * W with W before the update, kept or not
      assertEquals((float) (1 - 0.9) * (g[i] * w0[i]), mS[i], 1e-7, "score " + i);
    }
  }

  @Test
  void frozenEmbeddingsAreNotUpdatedAndNeedNoGradient() {
    DriverUpdate update = new DriverUpdate(pruning(PruningCriterion.MOVEMENT), optimizer(0.01, 1));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    float[] word = state.weights().get(WORD).data().clone();
    LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 5);
    update.apply(state, grads);
    assertArrayEquals(word, state.weights().get(WORD).data(), 0f);
    assertFalse(state.expAvg().containsKey(WORD));
    assertTrue(state.frozen().contains("embeddings.LayerNorm.bias"));
    grads.keySet().removeIf(ParameterNames::isEmbedding);
    update.apply(state, grads);
    assertArrayEquals(word, state.weights().get(WORD).data(), 0f);

    PruningConfig trainEmbeddings =
        new PruningConfig(
            PruningCriterion.MOVEMENT,
            pruning(PruningCriterion.MOVEMENT).schedule(),
            false,
            0,
            false,
            0);
    DriverUpdate update2 = new DriverUpdate(trainEmbeddings, optimizer(0.01, 1));
    TrainingState state2 = update2.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    update2.apply(state2, TestModels.randomWeights(SHAPES, 0.3, 5));
    assertFalse(java.util.Arrays.equals(word, state2.weights().get(WORD).data()));
  }

  @Test
  void weightDecayOnlyOnWeightsNotOnBiasesLayerNormsOrScores() {
    DriverUpdate update =
        new DriverUpdate(
            new PruningConfig(
                PruningCriterion.MOVEMENT, SparsitySchedule.constant(1, 10), false, 0, true, 0),
            new OptimizerConfig(0.5, 0.5, 0.1, 0.9, 0.999, 1e-8, 1, new LinearWarmupDecay(0, 10)));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    state.scores().get(Q).data()[0] = 3f;
    Map<String, float[]> before = new LinkedHashMap<>();
    state.weights().forEach((k, t) -> before.put(k, t.data().clone()));
    LinkedHashMap<String, HostTensor> zero = new LinkedHashMap<>();
    SHAPES.forEach((k, s) -> zero.put(k, HostTensor.zeros(s)));
    update.apply(state, zero);
    // Zero gradient: Adam moves nothing, decay multiplies by 1 - lr*wd = 0.95.
    for (String n : new String[] {Q, CLS, "pooler.dense.weight"}) {
      float[] b = before.get(n);
      for (int i = 0; i < b.length; i++) {
        assertEquals(b[i] - 0.05f * b[i], state.weights().get(n).data()[i], 0f, n);
      }
    }
    for (String n : new String[] {Q_BIAS, LN, "classifier.bias", "embeddings.LayerNorm.weight"}) {
      assertArrayEquals(before.get(n), state.weights().get(n).data(), 0f, n);
    }
    assertEquals(3f, state.scores().get(Q).data()[0]);
  }

  @Test
  void summaryReportsScheduleLrAndExactTopKCounts() {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT);
    OptimizerConfig o =
        new OptimizerConfig(3e-5, 1e-2, 0, 0.9, 0.999, 1e-8, 1.0, new LinearWarmupDecay(4, 10));
    DriverUpdate update = new DriverUpdate(p, o);
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    UpdateSummary s0 = update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 5));
    assertEquals(0.0, s0.learningRate());
    UpdateSummary s1 = update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 6));
    assertEquals(3e-5 * 0.25, s1.learningRate(), 1e-15);
    assertEquals(1e-2 * 0.25, s1.scoresLearningRate(), 1e-15);
    assertEquals(p.schedule().valueAt(1), s1.threshold());
    assertEquals(p.schedule().valueAt(2), s1.nextThreshold());
    assertEquals(12, s1.sparsity().matrices().size());
    for (SparsityReport.Entry e : s1.sparsity().matrices()) {
      long k = (long) (s1.nextThreshold() * e.numel());
      assertEquals(k, e.kept(), e.name());
      assertEquals(k, (long) countOnes(state.masks().get(e.name()).data()), e.name());
    }
    assertEquals(state.sparsity(), s1.sparsity());
    assertEquals(0.0, s1.lambda());
    assertEquals(0.0, s1.regularizer());
  }

  @Test
  void softMovementReportsRegularizerAtTheScoresBeforeTheStep() {
    PruningConfig p = pruning(PruningCriterion.SOFT_MOVEMENT);
    DriverUpdate update = new DriverUpdate(p, optimizer(0, 1));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 5));
    List<float[]> scores = new ArrayList<>();
    state.scores().values().forEach(t -> scores.add(t.data()));
    double r = SoftMovementRegularizer.value(scores);
    UpdateSummary s = update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 6));
    assertEquals(r, s.regularizer(), 1e-12);
    double tau = p.schedule().valueAt(1);
    assertEquals(30 * tau / 0.6, s.lambda(), 1e-12);
    assertEquals(s.lambda() * r, s.regularizerLoss(), 1e-12);
  }

  @Test
  void globalTopKKeepsIntThetaTotal() {
    PruningConfig p =
        new PruningConfig(
            PruningCriterion.MAGNITUDE,
            new SparsitySchedule(1, 0, 0, 10, 1.0, 0.2),
            true,
            0,
            true,
            0);
    DriverUpdate update = new DriverUpdate(p, optimizer(0, 1));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    UpdateSummary s = update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 5));
    long total = s.sparsity().totalNumel();
    assertEquals(2 * (4 * 64 + 2 * 128), total);
    assertEquals((long) (s.nextThreshold() * total), s.sparsity().totalKept());
    assertEquals(
        (long) (s.nextThreshold() * total),
        (long) state.masks().values().stream().mapToDouble(t -> countOnes(t.data())).sum());
  }

  @Test
  void effectiveWeightsAreMaskedFreshCopies() {
    DriverUpdate update = new DriverUpdate(pruning(PruningCriterion.MOVEMENT), optimizer(0, 1));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 5));
    LinkedHashMap<String, HostTensor> eff = state.effectiveWeights();
    assertEquals(state.weights().keySet(), eff.keySet());
    float[] w = state.weights().get(Q).data();
    float[] mk = state.masks().get(Q).data();
    float[] e = eff.get(Q).data();
    int zeros = 0;
    for (int i = 0; i < w.length; i++) {
      assertEquals(w[i] * mk[i], e[i], 0f);
      zeros += e[i] == 0f ? 1 : 0;
    }
    assertEquals(64 - (int) (state.sparsity().matrices().get(0).kept()), zeros);
    assertNotSame(state.weights().get(CLS).data(), eff.get(CLS).data());
    assertArrayEquals(state.weights().get(CLS).data(), eff.get(CLS).data(), 0f);
  }

  @Test
  void badGradientsAreRejectedAndLeaveTheStateUnchanged() {
    DriverUpdate update = new DriverUpdate(pruning(PruningCriterion.MOVEMENT), optimizer(0, 1));
    TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    LinkedHashMap<String, HostTensor> w = copy(state.weights());

    LinkedHashMap<String, HostTensor> g = TestModels.randomWeights(SHAPES, 0.3, 5);
    g.put("encoder.layer.9.output.dense.weight", HostTensor.zeros(2));
    assertEquals(
        "gradient for unknown tensor 'encoder.layer.9.output.dense.weight'",
        assertThrows(IllegalArgumentException.class, () -> update.apply(state, g)).getMessage());

    LinkedHashMap<String, HostTensor> g2 = TestModels.randomWeights(SHAPES, 0.3, 5);
    g2.remove(LN);
    assertEquals(
        "no gradient for trainable tensor '" + LN + "'",
        assertThrows(IllegalArgumentException.class, () -> update.apply(state, g2)).getMessage());

    LinkedHashMap<String, HostTensor> g3 = TestModels.randomWeights(SHAPES, 0.3, 5);
    g3.put(Q, HostTensor.zeros(8, 9));
    assertEquals(
        "gradient of '" + Q + "' has shape [8, 9] but the weight has [8, 8]",
        assertThrows(IllegalArgumentException.class, () -> update.apply(state, g3)).getMessage());

    LinkedHashMap<String, HostTensor> g4 = TestModels.randomWeights(SHAPES, 0.3, 5);
    g4.get(CLS).data()[3] = Float.NaN;
    String msg =
        assertThrows(IllegalArgumentException.class, () -> update.apply(state, g4)).getMessage();
    assertTrue(msg.startsWith("gradient of '" + CLS + "' is not finite"), msg);

    assertEquals(0, state.step());
    assertSame(w, state.weights(), "weights after rejected updates");
  }

  @Test
  void restoredStateIsValidated() {
    DriverUpdate update = new DriverUpdate(pruning(PruningCriterion.MOVEMENT), optimizer(0, 1));
    TrainingState s = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    LinkedHashMap<String, HostTensor> masks = copy(s.masks());
    masks.put(Q, HostTensor.zeros(8, 4));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new TrainingState(
                    copy(s.weights()),
                    s.frozen(),
                    copy(s.scores()),
                    masks,
                    copy(s.expAvg()),
                    copy(s.expAvgSq()),
                    3));
    assertEquals(
        "training state: mask of '" + Q + "' has shape [8, 4] but the weight has [8, 8]",
        e.getMessage());

    LinkedHashMap<String, HostTensor> m = copy(s.expAvg());
    m.remove(ParameterNames.scoresName(Q));
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new TrainingState(
                    copy(s.weights()),
                    s.frozen(),
                    copy(s.scores()),
                    copy(s.masks()),
                    m,
                    copy(s.expAvgSq()),
                    3));
    assertEquals(
        "training state: no exp_avg for '" + ParameterNames.scoresName(Q) + "'", e.getMessage());

    LinkedHashMap<String, HostTensor> m2 = copy(s.expAvg());
    m2.put(WORD, HostTensor.zeros(12, 8));
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new TrainingState(
                    copy(s.weights()),
                    s.frozen(),
                    copy(s.scores()),
                    copy(s.masks()),
                    m2,
                    copy(s.expAvgSq()),
                    3));
    assertEquals(
        "training state: exp_avg given for '" + WORD + "', which is not a trainable parameter",
        e.getMessage());

    TrainingState ok =
        new TrainingState(
            copy(s.weights()),
            s.frozen(),
            copy(s.scores()),
            copy(s.masks()),
            copy(s.expAvg()),
            copy(s.expAvgSq()),
            3);
    assertEquals(3, ok.step());
  }

  @Test
  void sparsityReportCountsLikeTheReference() {
    LinkedHashMap<String, HostTensor> weights = TestModels.randomWeights(SHAPES, 0.5, 1);
    DriverUpdate update =
        new DriverUpdate(
            new PruningConfig(
                PruningCriterion.MAGNITUDE, SparsitySchedule.constant(0.25, 10), false, 0, true, 0),
            optimizer(0, 1));
    TrainingState state = update.initialState(weights);
    SparsityReport r = state.sparsity();
    long prunable = 2 * (4 * 64 + 2 * 128);
    // Encoder biases and LayerNorms: per layer 4*8 + 16 + 8 biases and 2*(8+8) LayerNorm = 88.
    long other = 2 * 88;
    assertEquals(prunable, r.totalNumel());
    assertEquals(2 * (4 * 16 + 2 * 32), r.totalKept());
    assertEquals(0.75, r.sparsity(), 1e-12);
    assertEquals(other, r.encoderOtherParams());
    assertEquals(
        (double) (r.totalKept() + other) / (prunable + other), r.remainingEncoderFraction(), 1e-12);
  }

  private static double countOnes(float[] m) {
    double c = 0;
    for (float x : m) {
      c += x;
    }
    return c;
  }
}
