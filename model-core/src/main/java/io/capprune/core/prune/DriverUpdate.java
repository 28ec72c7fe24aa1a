package io.capprune.core.prune;

import io.capprune.core.optim.AdamW;
import io.capprune.core.optim.GradientClipper;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * One optimisation step on the driver (docs/cap-math.md §3.2-3.4 and 4.1 step b after the
 * backward):
 *
 * <ol>
 *   <li>gradients of the stored parameters from the workers' dL/dW' (W' = W * M is the leaf the
 *       workers differentiate): {@code dL/dW = g * M}; for movement and soft movement {@code dL/dS
 *       = g * W} (straight-through, no sigmoid factor), plus {@code lambda_t dR/dS} for soft;
 *   <li>global norm clipping over all of them, scores included;
 *   <li>AdamW on weights (decay except biases and LayerNorm) and scores (own LR, no decay), both
 *       with the LR multiplier of the current step;
 *   <li>step + 1, and masks recomputed for the threshold of the new step (magnitude: from |W| after
 *       the update).
 * </ol>
 *
 * Every loop runs over chunks of the flat arrays on all cores; the clipping needs the global norm
 * first, so there is one read-only pass (norm) and one update pass, then the mask selection.
 * Nothing in the state changes if the gradients are rejected (unknown or missing name, wrong shape,
 * non-finite norm). One {@code apply} at a time per instance: soft movement keeps a scratch array
 * per matrix (the regulariser gradient between the two passes).
 */
public final class DriverUpdate {

  private final PruningConfig pruning;
  private final OptimizerConfig optimizer;

  /** Soft movement: lambda dR/dS per score between the two passes of one step (not state). */
  private final Map<String, float[]> regularizerBuffers = new java.util.HashMap<>();

  public DriverUpdate(PruningConfig pruning, OptimizerConfig optimizer) {
    this.pruning = pruning;
    this.optimizer = optimizer;
  }

  public PruningConfig pruning() {
    return pruning;
  }

  public OptimizerConfig optimizer() {
    return optimizer;
  }

  /** scores = c * |W| / mean(|W|) per matrix: unit-free, so one c fits every matrix. */
  static void initialiseScoresFromMagnitude(TrainingState state, double c) {
    for (Map.Entry<String, HostTensor> e : state.scores().entrySet()) {
      float[] w = state.weights().get(e.getKey()).data();
      float[] s = e.getValue().data();
      double sum = 0;
      for (float x : w) {
        sum += Math.abs(x);
      }
      double mean = sum / w.length;
      float k = mean > 0 ? (float) (c / mean) : 0f;
      for (int i = 0; i < w.length; i++) {
        s[i] = k * Math.abs(w[i]);
      }
    }
  }

  /** A fresh state for these weights with masks for the threshold of step 0. Takes ownership. */
  public TrainingState initialState(java.util.LinkedHashMap<String, HostTensor> weights) {
    TrainingState state =
        TrainingState.fresh(weights, pruning.criterion().usesScores(), pruning.freezeEmbeddings());
    if (pruning.magnitudeScoreInit() > 0) {
      initialiseScoresFromMagnitude(state, pruning.magnitudeScoreInit());
    }
    if (pruning.criterion().recomputesMasks()) {
      recomputeMasks(state, pruning.thresholdAt(0));
    }
    return state;
  }

  /**
   * Applies the aggregated gradients: dL/dW' for prunable matrices, dL/dp for every other trainable
   * parameter. Gradients of frozen parameters are ignored.
   */
  public UpdateSummary apply(TrainingState state, Map<String, HostTensor> grads) {
    // a state a device update held continues on the host: its arrays come back first
    state.releaseDevice();
    PruningCriterion criterion = pruning.criterion();
    if (criterion.usesScores() && state.scores().isEmpty() && !state.masks().isEmpty()) {
      throw new IllegalArgumentException(
          "training state has no scores but the method is " + criterion);
    }
    List<Slot> slots = slots(state, grads);
    long t = state.step();
    double threshold = pruning.thresholdAt(t);
    double lambda = pruning.lambdaAt(t);
    int numPrunable = state.masks().size();

    int[][] chunks = chunks(slots);
    int nChunks = chunks[0].length;
    double[] sq = new double[nChunks];
    double[] sig = new double[nChunks];
    ParallelLoops.forEach(
        nChunks,
        c -> {
          Slot s = slots.get(chunks[0][c]);
          double rc = regCoef(s, lambda, numPrunable);
          if (criterion == PruningCriterion.SOFT_MOVEMENT && s.mask != null) {
            double[] both = softSums(s, rc, chunks[1][c], chunks[2][c]);
            sq[c] = both[0];
            sig[c] = both[1];
          } else {
            sq[c] = sumOfSquares(s, criterion, chunks[1][c], chunks[2][c]);
          }
        });
    double[] perSlot = new double[slots.size()];
    double regularizer = 0;
    for (int c = 0; c < nChunks; c++) {
      perSlot[chunks[0][c]] += sq[c];
      Slot s = slots.get(chunks[0][c]);
      if (s.mask != null) {
        regularizer += sig[c] / s.w.length;
      }
    }
    double total = 0;
    for (int i = 0; i < perSlot.length; i++) {
      if (!Double.isFinite(perSlot[i])) {
        throw new IllegalArgumentException(
            "gradient of '"
                + slots.get(i).name
                + "' is not finite (squared norm "
                + perSlot[i]
                + "); state left unchanged");
      }
      total += perSlot[i];
    }
    regularizer =
        criterion == PruningCriterion.SOFT_MOVEMENT && numPrunable > 0
            ? regularizer / numPrunable
            : 0;
    double norm = Math.sqrt(total);
    double clip = GradientClipper.coefficient(norm, optimizer.maxGradNorm());
    float cf = (float) clip;

    AdamW.StepCoefficients decayed = optimizer.weightCoefficients(t, true);
    AdamW.StepCoefficients plain = optimizer.weightCoefficients(t, false);
    AdamW.StepCoefficients forScores = optimizer.scoreCoefficients(t);

    double next = pruning.thresholdAt(t + 1);
    // Top-k per matrix is fused with the update: one task per prunable matrix writes the new
    // weights/scores and the histogram the selection starts from, then selects. Saves a pass.
    boolean fusedTopK =
        !pruning.globalTopK()
            && criterion != PruningCriterion.SOFT_MOVEMENT
            && criterion.recomputesMasks();
    int[][] tasks = fusedTopK ? wholeMatricesAndChunks(slots) : chunks;
    long[] keptBySlot = new long[slots.size()];
    ParallelLoops.forEach(
        tasks[0].length,
        c -> {
          int slot = tasks[0][c];
          Slot s = slots.get(slot);
          AdamW.StepCoefficients cw = s.decay ? decayed : plain;
          int from = tasks[1][c];
          int to = tasks[2][c];
          int[] hist = fusedTopK && s.mask != null ? MaskComputer.histogram() : null;
          if (s.mask == null) {
            AdamW.update(s.w, s.g, cf, s.m, s.v, from, to, cw);
          } else if (!criterion.usesScores()) {
            updateMasked(s, cf, from, to, cw, hist);
          } else {
            updateWithScores(
                s, cf, lambda == 0 ? null : s.regularizerGradient, from, to, cw, forScores, hist);
          }
          if (hist != null) {
            int k = (int) MaskComputer.keepCount(next, s.w.length);
            MaskComputer.topKFromHistogram(
                s.name,
                criterion == PruningCriterion.MAGNITUDE ? s.w : s.scores,
                criterion == PruningCriterion.MAGNITUDE,
                k,
                s.mask,
                hist);
            keptBySlot[slot] = k;
          }
        });
    state.advance();
    Map<String, Long> kept = new java.util.HashMap<>();
    if (fusedTopK) {
      for (int i = 0; i < slots.size(); i++) {
        if (slots.get(i).mask != null) {
          kept.put(slots.get(i).name, keptBySlot[i]);
        }
      }
    } else {
      long[] byMask = recomputeMasks(state, next);
      int i = 0;
      for (String name : state.masks().keySet()) {
        kept.put(name, byMask[i++]);
      }
    }

    List<SparsityReport.Entry> entries = new ArrayList<>();
    for (Map.Entry<String, HostTensor> e : state.masks().entrySet()) {
      entries.add(new SparsityReport.Entry(e.getKey(), e.getValue().numel(), kept.get(e.getKey())));
    }
    return new UpdateSummary(
        t,
        norm,
        clip,
        optimizer.learningRateAt(t),
        optimizer.scoresLearningRateAt(t),
        threshold,
        next,
        lambda,
        regularizer,
        new SparsityReport(entries, state.encoderOtherParams()));
  }

  /** Recomputes every mask in place for {@code threshold}; returns the kept count per matrix. */
  long[] recomputeMasks(TrainingState state, double threshold) {
    state.releaseDevice();
    List<String> names = new ArrayList<>(state.masks().keySet());
    int m = names.size();
    if (!pruning.criterion().recomputesMasks()) {
      long[] kept = new long[m];
      for (int j = 0; j < m; j++) {
        kept[j] =
            state.masks().get(names.get(j)).numel() - state.masks().get(names.get(j)).countZeros();
      }
      return kept;
    }
    List<float[]> masks = new ArrayList<>(m);
    List<float[]> source = new ArrayList<>(m);
    PruningCriterion criterion = pruning.criterion();
    for (String name : names) {
      masks.add(state.masks().get(name).data());
      source.add(
          criterion == PruningCriterion.MAGNITUDE
              ? state.weights().get(name).data()
              : state.scores().get(name).data());
    }
    boolean magnitude = criterion == PruningCriterion.MAGNITUDE;
    if (pruning.globalTopK()) {
      return MaskComputer.globalTopK(names, source, magnitude, threshold, masks);
    }
    long[] kept = new long[m];
    // Largest matrices first so the two cores finish together.
    Integer[] order = new Integer[m];
    for (int j = 0; j < m; j++) {
      order[j] = j;
    }
    Arrays.sort(order, (a, b) -> Integer.compare(source.get(b).length, source.get(a).length));
    ParallelLoops.forEach(
        m,
        j -> {
          int idx = order[j];
          float[] src = source.get(idx);
          if (criterion == PruningCriterion.SOFT_MOVEMENT) {
            kept[idx] = MaskComputer.softThreshold(names.get(idx), src, threshold, masks.get(idx));
          } else {
            int k = (int) MaskComputer.keepCount(threshold, src.length);
            MaskComputer.topK(names.get(idx), src, magnitude, k, masks.get(idx));
            kept[idx] = k;
          }
        });
    return kept;
  }

  /**
   * lambda / (M * numel): the factor of sigmoid'(S) in lambda dR/dS, as SoftMovementRegularizer
   * computes it.
   */
  private static double regCoef(Slot s, double lambda, int numPrunable) {
    return s.mask == null || lambda == 0 ? 0 : lambda / ((double) numPrunable * s.w.length);
  }

  /**
   * The squared norm of this chunk's parameter gradients, computed as the update pass computes
   * them.
   */
  private static double sumOfSquares(Slot s, PruningCriterion criterion, int from, int to) {
    if (s.mask == null) {
      return GradientClipper.sumOfSquares(s.g, from, to);
    }
    float[] g = s.g, w = s.w, mask = s.mask;
    double a = 0, b = 0;
    if (!criterion.usesScores()) {
      for (int i = from; i < to; i++) {
        float gw = g[i] * mask[i];
        a += (double) gw * gw;
      }
    } else {
      for (int i = from; i < to; i++) {
        float gi = g[i];
        float gw = gi * mask[i];
        float gs = gi * w[i];
        a += (double) gw * gw;
        b += (double) gs * gs;
      }
    }
    return a + b;
  }

  /**
   * Soft movement's first pass: the squared norm of this chunk's weight and score gradients (score
   * gradient incl. {@code rc * sigmoid'(s)}) and the sum of sigmoid(s) for R(S), with one exp per
   * element.
   */
  private static double[] softSums(Slot s, double rc, int from, int to) {
    float[] g = s.g, w = s.w, mask = s.mask, sc = s.scores, reg = s.regularizerGradient;
    double a = 0, b = 0, sum = 0;
    for (int i = from; i < to; i++) {
      double sig = SoftMovementRegularizer.sigmoid(sc[i]);
      sum += sig;
      float gi = g[i];
      float gw = gi * mask[i];
      float gs = gi * w[i];
      if (rc != 0) {
        // Kept for the update pass: recomputing the exp there cost more than this array traffic.
        float r = (float) (rc * (sig * (1 - sig)));
        reg[i] = r;
        gs += r;
      }
      a += (double) gw * gw;
      b += (double) gs * gs;
    }
    return new double[] {a + b, sum};
  }

  private static void updateMasked(
      Slot s, float cf, int from, int to, AdamW.StepCoefficients c, int[] hist) {
    float[] g = s.g, w = s.w, mask = s.mask, m = s.m, v = s.v;
    final float b1 = c.beta1(), a1 = c.oneMinusBeta1(), b2 = c.beta2(), a2 = c.oneMinusBeta2();
    final float step = c.stepSize(), eps = c.eps(), decay = c.decay();
    for (int i = from; i < to; i++) {
      float p = AdamW.step(w[i], g[i] * mask[i] * cf, m, v, i, b1, a1, b2, a2, step, eps);
      p = p - decay * p;
      w[i] = p;
      if (hist != null) {
        hist[MaskComputer.bucketOf(p, true)]++;
      }
    }
  }

  /**
   * Weights and scores in one pass. dL/dS uses W before this step's update, as autograd does; soft
   * movement adds {@code reg[i]}, its lambda dR/dS from the norm pass. Scores take no decay.
   */
  private static void updateWithScores(
      Slot s,
      float cf,
      float[] reg,
      int from,
      int to,
      AdamW.StepCoefficients c,
      AdamW.StepCoefficients cs,
      int[] hist) {
    float[] g = s.g, w = s.w, mask = s.mask, m = s.m, v = s.v;
    float[] sc = s.scores, sm = s.sm, sv = s.sv;
    final float b1 = c.beta1(), a1 = c.oneMinusBeta1(), b2 = c.beta2(), a2 = c.oneMinusBeta2();
    final float step = c.stepSize(), eps = c.eps(), decay = c.decay();
    final float sStep = cs.stepSize();
    for (int i = from; i < to; i++) {
      float gi = g[i];
      float wi = w[i];
      float gs = gi * wi;
      if (reg != null) {
        gs += reg[i];
      }
      gs *= cf;
      float gw = gi * mask[i] * cf;
      float p = AdamW.step(wi, gw, m, v, i, b1, a1, b2, a2, step, eps);
      w[i] = p - decay * p;
      float sn = AdamW.step(sc[i], gs, sm, sv, i, b1, a1, b2, a2, sStep, eps);
      sc[i] = sn;
      if (hist != null) {
        hist[MaskComputer.bucketOf(sn, false)]++;
      }
    }
  }

  /** Like {@link #chunks} but every prunable matrix is one task (its selection needs all of it). */
  private static int[][] wholeMatricesAndChunks(List<Slot> slots) {
    int[][] chunked = chunks(slots);
    List<int[]> tasks = new ArrayList<>();
    for (int i = 0; i < slots.size(); i++) {
      if (slots.get(i).mask != null) {
        tasks.add(new int[] {i, 0, slots.get(i).w.length});
      }
    }
    for (int c = 0; c < chunked[0].length; c++) {
      if (slots.get(chunked[0][c]).mask == null) {
        tasks.add(new int[] {chunked[0][c], chunked[1][c], chunked[2][c]});
      }
    }
    // Largest first so the cores finish together.
    tasks.sort((a, b) -> Integer.compare(b[2] - b[1], a[2] - a[1]));
    int[][] out = new int[3][tasks.size()];
    for (int t = 0; t < tasks.size(); t++) {
      for (int j = 0; j < 3; j++) {
        out[j][t] = tasks.get(t)[j];
      }
    }
    return out;
  }

  /** (slot, from, to) of every chunk, big tensors split so both cores get work. */
  private static int[][] chunks(List<Slot> slots) {
    int n = 0;
    for (Slot s : slots) {
      n += (s.w.length + ParallelLoops.CHUNK - 1) / ParallelLoops.CHUNK;
    }
    int[][] c = new int[3][n];
    int k = 0;
    for (int i = 0; i < slots.size(); i++) {
      int len = slots.get(i).w.length;
      for (int from = 0; from < len; from += ParallelLoops.CHUNK) {
        c[0][k] = i;
        c[1][k] = from;
        c[2][k] = Math.min(len, from + ParallelLoops.CHUNK);
        k++;
      }
    }
    return c;
  }

  private List<Slot> slots(TrainingState state, Map<String, HostTensor> grads) {
    for (Map.Entry<String, HostTensor> e : grads.entrySet()) {
      HostTensor w = state.weights().get(e.getKey());
      if (w == null) {
        throw new IllegalArgumentException("gradient for unknown tensor '" + e.getKey() + "'");
      }
      if (!e.getValue().sameShape(w)) {
        throw new IllegalArgumentException(
            "gradient of '"
                + e.getKey()
                + "' has shape "
                + Arrays.toString(e.getValue().shape())
                + " but the weight has "
                + Arrays.toString(w.shape()));
      }
    }
    List<Slot> slots = new ArrayList<>();
    for (Map.Entry<String, HostTensor> e : state.weights().entrySet()) {
      String name = e.getKey();
      if (!state.isTrainable(name)) {
        continue;
      }
      HostTensor g = grads.get(name);
      if (g == null) {
        throw new IllegalArgumentException("no gradient for trainable tensor '" + name + "'");
      }
      HostTensor mask = state.masks().get(name);
      HostTensor sc = mask == null ? null : state.scores().get(name);
      String scoresName = sc == null ? null : ParameterNames.scoresName(name);
      slots.add(
          new Slot(
              name,
              e.getValue().data(),
              g.data(),
              state.expAvg().get(name).data(),
              state.expAvgSq().get(name).data(),
              !ParameterNames.isNoDecay(name),
              mask == null ? null : mask.data(),
              sc == null ? null : sc.data(),
              sc == null ? null : state.expAvg().get(scoresName).data(),
              sc == null ? null : state.expAvgSq().get(scoresName).data(),
              sc != null && pruning.criterion() == PruningCriterion.SOFT_MOVEMENT
                  ? regularizerBuffer(name, sc.numel())
                  : null));
    }
    return slots;
  }

  private float[] regularizerBuffer(String name, int n) {
    float[] b = regularizerBuffers.get(name);
    if (b == null || b.length != n) {
      b = new float[n];
      regularizerBuffers.put(name, b);
    }
    return b;
  }

  private record Slot(
      String name,
      float[] w,
      float[] g,
      float[] m,
      float[] v,
      boolean decay,
      float[] mask,
      float[] scores,
      float[] sm,
      float[] sv,
      float[] regularizerGradient) {}
}
