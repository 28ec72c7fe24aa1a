package io.capprune.core.prune;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.exchange.DevicePacking;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.optim.AdamW;
import io.capprune.core.optim.GradientClipper;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostBuffer;
import io.capprune.core.tensor.HostCopy;
import io.capprune.core.tensor.HostTensor;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@link DriverUpdate}'s step through DJL on a device (the driver's GPU): the state lives there
 * between steps as flat vectors over the trainable tensors in the state's order (weights, AdamW
 * moments, scores and their moments, masks), a step uploads the aggregated gradient once, and the
 * next broadcast ({@link MaskSet} bits and {@link PackedWeights}) is built there and downloaded
 * once each. The host tensors of the {@link TrainingState} are brought up to date only when someone
 * reads them (snapshots, evaluation): every accessor of the state copies back first.
 *
 * <p>The arithmetic is DriverUpdate's, operation by operation in float32 with the same rounding
 * order (every operation is a separate kernel, so nothing is contracted into an FMA): on the CPU
 * the weights, moments and scores come out bit-identical, and so do the top-k masks, whose ties go
 * to the lowest flat index as in {@link MaskComputer}. What differs: the global norm is summed in
 * float64 in another order (the clip coefficient agrees to float64 rounding), and soft movement's
 * sigmoid and regulariser gradient are computed in float32 instead of float64.
 *
 * <p>Not thread-safe; one state at a time. {@link #close} frees the device memory (the state goes
 * back to the host first).
 */
public final class DeviceDriverUpdate implements AutoCloseable {

  private final PruningConfig pruning;
  private final OptimizerConfig optimizer;
  private final Device device;

  /**
   * How the per-tensor parts of a step (weight decay only on some tensors, score gradients only on
   * the prunable matrices) are applied: by multiplying with 0/1 vectors over the whole state (one
   * kernel each: the GPU's choice, where a pass costs far less than a launch per tensor), or in
   * place on the runs of tensors concerned (the CPU's choice, where every pass over the state
   * costs). The same arithmetic either way (a product with 1 or 0 is exact).
   */
  private final boolean flagVectors;

  private Resident resident;

  public DeviceDriverUpdate(PruningConfig pruning, OptimizerConfig optimizer, Device device) {
    this(pruning, optimizer, device, device.isGpu());
  }

  /** With the strategy for per-tensor parts chosen (tests run both on the CPU). */
  DeviceDriverUpdate(
      PruningConfig pruning, OptimizerConfig optimizer, Device device, boolean flagVectors) {
    this.pruning = pruning;
    this.optimizer = optimizer;
    this.device = device;
    this.flagVectors = flagVectors;
  }

  public Device device() {
    return device;
  }

  public PruningConfig pruning() {
    return pruning;
  }

  public OptimizerConfig optimizer() {
    return optimizer;
  }

  /** A fresh state for these weights, masks for the threshold of step 0 computed on the device. */
  public TrainingState initialState(LinkedHashMap<String, HostTensor> weights) {
    TrainingState state =
        TrainingState.fresh(weights, pruning.criterion().usesScores(), pruning.freezeEmbeddings());
    if (pruning.magnitudeScoreInit() > 0) {
      DriverUpdate.initialiseScoresFromMagnitude(state, pruning.magnitudeScoreInit());
    }
    if (pruning.criterion().recomputesMasks()) {
      Resident r = bind(state);
      r.recomputeMasks(pruning.thresholdAt(0));
      r.dirty = true;
    }
    return state;
  }

  /** {@link DriverUpdate#apply}: the gradients by name, copied into one flat upload. */
  public UpdateSummary apply(TrainingState state, Map<String, HostTensor> grads) {
    Resident r = bind(state);
    for (Map.Entry<String, HostTensor> e : grads.entrySet()) {
      HostTensor w = state.weightsOnHost().get(e.getKey());
      if (w == null) {
        throw new IllegalArgumentException("gradient for unknown tensor '" + e.getKey() + "'");
      }
      if (!e.getValue().sameShape(w)) {
        throw new IllegalArgumentException(
            "gradient of '"
                + e.getKey()
                + "' has shape "
                + java.util.Arrays.toString(e.getValue().shape())
                + " but the weight has "
                + java.util.Arrays.toString(w.shape()));
      }
    }
    float[] flat = new float[(int) r.n];
    for (int i = 0; i < r.names.size(); i++) {
      HostTensor g = grads.get(r.names.get(i));
      if (g == null) {
        throw new IllegalArgumentException(
            "no gradient for trainable tensor '" + r.names.get(i) + "'");
      }
      System.arraycopy(g.data(), 0, flat, (int) r.offsets[i], g.numel());
    }
    return applyFlat(state, flat);
  }

  /**
   * Applies a flat gradient: dL/dW' of every trainable tensor (the state's order without the frozen
   * tensors, as {@link #trainableNames} lists them), concatenated.
   */
  public UpdateSummary applyFlat(TrainingState state, float[] flatGradient) {
    Resident r = bind(state);
    if (flatGradient.length != r.n) {
      throw new IllegalArgumentException(
          "flat gradient of " + flatGradient.length + " values, the trainable tensors have " + r.n);
    }
    try (NDManager step = r.manager.newSubManager()) {
      NDArray g = r.upload(step, flatGradient);
      return apply(state, g);
    }
  }

  /**
   * {@link #applyFlat} for a gradient still in its fp16 wire encoding (the sum of one executor's
   * buffer, as it arrived): it goes up as halves, half the bytes of fp32, and is decoded on the
   * device, so the driver neither decodes it on the heap nor uploads fp32. The same update as
   * {@code applyFlat(state, HalfBlocks.decode(g))}.
   */
  public UpdateSummary applyEncoded(TrainingState state, HalfBlocks.Encoded g) {
    Resident r = bind(state);
    if (g.halves().length != r.n) {
      throw new IllegalArgumentException(
          "encoded gradient of "
              + g.halves().length
              + " values, the trainable tensors have "
              + r.n);
    }
    try (NDManager step = r.manager.newSubManager()) {
      return apply(state, r.uploadEncoded(step, g));
    }
  }

  /**
   * Copies a flat gradient ({@link #trainableNames} order) to the device, attached to {@code into}:
   * what {@link #applyFlat} does before {@link #apply(TrainingState, NDArray)}.
   */
  public NDArray upload(TrainingState state, float[] flatGradient, NDManager into) {
    Resident r = bind(state);
    if (flatGradient.length != r.n) {
      throw new IllegalArgumentException(
          "flat gradient of " + flatGradient.length + " values, the trainable tensors have " + r.n);
    }
    return r.upload(into, flatGradient);
  }

  /**
   * Applies a flat gradient already on this update's device (float32, {@link #trainableNames}
   * order); {@code g} is read, not kept.
   */
  public UpdateSummary apply(TrainingState state, NDArray g) {
    Resident r = bind(state);
    if (g.size() != r.n || g.getDataType() != DataType.FLOAT32) {
      throw new IllegalArgumentException(
          "flat gradient of "
              + g.size()
              + " "
              + g.getDataType()
              + " values, the trainable tensors have "
              + r.n
              + " float32");
    }
    UpdateSummary s = r.step(state, g.toDevice(device, false));
    return s;
  }

  /** The trainable tensors in the order of the flat vectors. */
  public List<String> trainableNames(TrainingState state) {
    return List.copyOf(bind(state).names);
  }

  /** The bits of the current masks, computed on the device (the same bits as MaskSet.of). */
  public MaskSet maskSet(TrainingState state) {
    Resident r = bind(state);
    if (r.maskSet == null && r.pendingBits != null) {
      List<String> order = new ArrayList<>();
      for (int j : r.prunable) {
        order.add(r.names.get(j));
      }
      r.maskSet = DevicePacking.readBitRows(r.pendingBits, r.pendingRows, order);
      r.dropPendingBits();
    } else if (r.maskSet == null) {
      try (NDManager tmp = r.manager.newSubManager()) {
        LinkedHashMap<String, NDArray> masks = new LinkedHashMap<>();
        for (int j = 0; j < r.prunable.length; j++) {
          masks.put(r.names.get(r.prunable[j]), r.segment(tmp, r.mask, r.prunable[j]));
        }
        r.maskSet = DevicePacking.maskSet(masks);
      }
    }
    return r.maskSet;
  }

  /**
   * The trainable effective weights W * M as they are on this update's device, in {@link
   * #trainableNames} order, attached to {@code into}: what a worker on the same device would
   * compute with, with no copy to the heap and no broadcast. Used by the GPU benchmark of a step
   * that keeps the update next to the worker ({@code WorkerStepBenchmark}, the "update resident"
   * row).
   */
  public FlatParameters effectiveWeights(TrainingState state, NDManager into) {
    Resident r = bind(state);
    List<int[]> shapes = new ArrayList<>();
    for (String name : r.names) {
      shapes.add(state.weightsOnHost().get(name).shape());
    }
    NDArray values = r.w.mul(r.mask);
    values.attach(into);
    return new FlatParameters(r.names, shapes, values);
  }

  /**
   * The step's broadcast: {@code names} (the trainable tensors, in order) packed against {@code
   * masks} as {@link PackedWeights#pack} packs them, selected and encoded on the device.
   */
  public PackedWeights pack(
      TrainingState state, List<String> names, MaskSet masks, WirePrecision precision) {
    Resident r = bind(state);
    if (!names.equals(r.names)) {
      throw new IllegalArgumentException(
          "device packing packs the trainable tensors in the "
              + "state's order, got another list of "
              + names.size()
              + " names");
    }
    List<int[]> shapes = new ArrayList<>();
    for (String name : names) {
      shapes.add(state.weightsOnHost().get(name).shape());
    }
    try (NDManager m = r.manager.newSubManager()) {
      NDArray values;
      NDArray keep;
      boolean ownValues = true;
      boolean allPrunable = masks.names().size() == r.prunable.length;
      for (int j = 0; allPrunable && j < r.prunable.length; j++) {
        allPrunable = masks.masks(r.names.get(r.prunable[j]));
      }
      if (allPrunable) {
        // the mask is 1 on every tensor that is not pruned; where it keeps an entry W * M = W,
        // as masks are 0/1 (FIXED masks come from outside: multiplied, as the host packer does)
        ownValues = pruning.criterion() == PruningCriterion.FIXED;
        values = ownValues ? r.w.mul(r.mask) : r.w;
        keep = r.mask.neq(r.scalar(m, 0f));
      } else {
        NDList vs = new NDList();
        NDList ks = new NDList();
        for (int i = 0; i < names.size(); i++) {
          NDArray w = r.segment(m, r.w, i);
          if (masks.masks(names.get(i))) {
            NDArray mk = r.segment(m, r.mask, i);
            vs.add(w.mul(mk));
            ks.add(mk.neq(r.scalar(m, 0f)));
          } else {
            vs.add(w);
            ks.add(r.segment(m, r.mask, i).neq(r.scalar(m, Float.NaN)));
          }
        }
        values = NDArrays.concat(vs);
        keep = NDArrays.concat(ks);
      }
      if (ownValues) {
        values.attach(m);
      }
      keep.attach(m);
      return DevicePacking.pack(names, shapes, values, keep, masks, precision);
    }
  }

  /**
   * The mask selection alone for {@code threshold}, waiting for the device (for the benchmark:
   * where a step's time goes). Leaves the state as a step that ended with this threshold does.
   */
  void recomputeMasks(TrainingState state, double threshold) {
    Resident r = bind(state);
    r.recomputeMasks(threshold);
    r.dirty = true;
    try (NDManager m = r.manager.newSubManager()) {
      NDArray first = r.mask.get(0);
      first.attach(m);
      first.getFloat();
    }
  }

  /** Arrays the device holds for the state now (for tests: a step must leave none behind). */
  int residentArrays() {
    return resident == null
        ? 0
        : ((ai.djl.ndarray.BaseNDManager) resident.manager).getManagedArrays().size();
  }

  /** Copies the state back to the host and frees the device's arrays. */
  @Override
  public void close() {
    if (resident != null && resident.owner != null) {
      resident.owner.releaseDevice();
    }
    resident = null;
  }

  /**
   * Frees the device's arrays without copying the state back to the host (BERT-base's state with
   * both moments is ~1.3 GB): for a state nobody reads again, as an executor's once a newer
   * publication replaces it. The state's host tensors are stale afterwards.
   */
  public void discard() {
    if (resident != null && resident.owner != null) {
      resident.owner.discardDevice();
    }
    resident = null;
  }

  private Resident bind(TrainingState state) {
    PruningCriterion criterion = pruning.criterion();
    if (criterion.usesScores()
        && state.scoresOnHost().isEmpty()
        && !state.masksOnHost().isEmpty()) {
      throw new IllegalArgumentException(
          "training state has no scores but the method is " + criterion);
    }
    if (resident != null && resident.owner == state && state.resident() == resident) {
      return resident;
    }
    if (resident != null && resident.owner != null && resident.owner != state) {
      resident.owner.releaseDevice();
    }
    state.releaseDevice();
    resident = new Resident(state);
    state.resident(resident);
    return resident;
  }

  /** The state's arrays on the device and what a step needs besides them. */
  final class Resident implements AutoCloseable {
    final NDManager manager;
    TrainingState owner;
    final List<String> names = new ArrayList<>();
    final long[] offsets;
    final long[] numels;
    final long n;

    /** Indices into names of the prunable matrices, in order. */
    final int[] prunable;

    final boolean scores;
    NDArray w;
    NDArray m1;
    NDArray v1;

    /** Mask values; 1 on every entry of a tensor that is not pruned. */
    NDArray mask;

    NDArray s;
    NDArray sm;
    NDArray sv;

    /** With {@link #flagVectors}: 1 on the entries of prunable matrices, 0 elsewhere. */
    final NDArray prunableFlag;

    /** With {@link #flagVectors}: 1 on the entries of tensors with weight decay, 0 elsewhere. */
    final NDArray decayFlag;

    /** [from, to) runs of the flat vectors that hold no prunable matrix. */
    final List<int[]> others;

    /**
     * Views of the weights and the scores on each prunable matrix ({@code [j]} for {@code
     * prunable[j]}; scores null without them), made once: the in-place updates of w and s show
     * through, and a step's selection makes no index calls (each costs a JNI call and a parse).
     */
    private final NDArray[] weightRows;

    private final NDArray[] scoreRows;

    /** Views of one vector of ones, one per run of {@link #others}, for the new mask vector. */
    private final NDArray[] onesRuns;

    /** [from, to) runs of the flat vectors whose tensors have weight decay. */
    final List<int[]> decayRuns;

    /** 1 / numel of the matrix on prunable entries, 0 elsewhere (soft movement). */
    final NDArray inverseNumel;

    /** Whether the host tensors miss changes made here. */
    boolean dirty;

    MaskSet maskSet;
    long[] kept;

    /**
     * The bits of the masks the last top-k chose, queued on the device from its boolean rows
     * ({@link DevicePacking#bitRows}, one array per group of same-sized matrices, rows named by
     * {@link #pendingRows}) and read by the next {@link #maskSet}: no pass over the float mask
     * vector. Null where the masks came otherwise (the host, global top-k, soft movement).
     */
    List<NDArray> pendingBits;

    List<String> pendingRows;

    /** Reused for uploads (page-locked on a GPU where the driver allows). */
    private final HostBuffer staging = new HostBuffer(device);

    Resident(TrainingState state) {
      this.owner = state;
      this.manager = NDManager.newBaseManager(device);
      LinkedHashMap<String, HostTensor> weights = state.weightsOnHost();
      List<Integer> pr = new ArrayList<>();
      for (String name : weights.keySet()) {
        if (!state.frozen().contains(name)) {
          if (state.masksOnHost().containsKey(name)) {
            pr.add(names.size());
          }
          names.add(name);
        }
      }
      offsets = new long[names.size()];
      numels = new long[names.size()];
      long total = 0;
      for (int i = 0; i < names.size(); i++) {
        offsets[i] = total;
        numels[i] = weights.get(names.get(i)).numel();
        total += numels[i];
      }
      if (total > Integer.MAX_VALUE - 16) {
        throw new IllegalArgumentException("more than 2^31 trainable elements");
      }
      n = total;
      prunable = pr.stream().mapToInt(Integer::intValue).toArray();
      scores = !state.scoresOnHost().isEmpty();
      boolean[] isPrunable = new boolean[names.size()];
      for (int j : prunable) {
        isPrunable[j] = true;
      }
      w = upload(manager, gather(i -> weights.get(names.get(i)).data(), 0f));
      m1 = upload(manager, gather(i -> state.expAvgOnHost().get(names.get(i)).data(), 0f));
      v1 = upload(manager, gather(i -> state.expAvgSqOnHost().get(names.get(i)).data(), 0f));
      mask =
          upload(
              manager,
              gather(i -> isPrunable[i] ? state.masksOnHost().get(names.get(i)).data() : null, 1f));
      if (scores) {
        s =
            upload(
                manager,
                gather(
                    i -> isPrunable[i] ? state.scoresOnHost().get(names.get(i)).data() : null, 0f));
        sm =
            upload(
                manager,
                gather(
                    i ->
                        isPrunable[i]
                            ? state
                                .expAvgOnHost()
                                .get(ParameterNames.scoresName(names.get(i)))
                                .data()
                            : null,
                    0f));
        sv =
            upload(
                manager,
                gather(
                    i ->
                        isPrunable[i]
                            ? state
                                .expAvgSqOnHost()
                                .get(ParameterNames.scoresName(names.get(i)))
                                .data()
                            : null,
                    0f));
      }
      prunableFlag =
          flagVectors && scores ? upload(manager, constant(i -> isPrunable[i] ? 1f : 0f)) : null;
      decayFlag =
          flagVectors && optimizer.weightDecay() != 0
              ? upload(manager, constant(i -> ParameterNames.isNoDecay(names.get(i)) ? 0f : 1f))
              : null;
      others = runs(i -> !isPrunable[i]);
      decayRuns = runs(i -> !ParameterNames.isNoDecay(names.get(i)));
      weightRows = new NDArray[prunable.length];
      scoreRows = scores ? new NDArray[prunable.length] : null;
      for (int j = 0; j < prunable.length; j++) {
        weightRows[j] = segment(manager, w, prunable[j]);
        if (scores) {
          scoreRows[j] = segment(manager, s, prunable[j]);
        }
      }
      int longest = 0;
      for (int[] run : others) {
        longest = Math.max(longest, run[1] - run[0]);
      }
      onesRuns = new NDArray[others.size()];
      if (longest > 0) {
        NDArray ones = manager.ones(new Shape(longest), DataType.FLOAT32, device);
        for (int r = 0; r < onesRuns.length; r++) {
          onesRuns[r] = ones.get(new NDIndex("0:{}", others.get(r)[1] - others.get(r)[0]));
          onesRuns[r].attach(manager);
        }
      }
      inverseNumel =
          pruning.criterion() == PruningCriterion.SOFT_MOVEMENT
              ? upload(manager, constant(i -> isPrunable[i] ? (float) (1.0 / numels[i]) : 0f))
              : null;
      kept = countKept();
    }

    private float[] gather(java.util.function.IntFunction<float[]> source, float fill) {
      float[] flat = new float[(int) n];
      for (int i = 0; i < names.size(); i++) {
        float[] d = source.apply(i);
        if (d == null) {
          java.util.Arrays.fill(flat, (int) offsets[i], (int) (offsets[i] + numels[i]), fill);
        } else {
          System.arraycopy(d, 0, flat, (int) offsets[i], d.length);
        }
      }
      return flat;
    }

    /** Maximal [from, to) runs of consecutive tensors that {@code in} selects. */
    private List<int[]> runs(java.util.function.IntPredicate in) {
      List<int[]> out = new ArrayList<>();
      for (int i = 0; i < names.size(); i++) {
        if (!in.test(i)) {
          continue;
        }
        int from = (int) offsets[i];
        int to = (int) (offsets[i] + numels[i]);
        if (!out.isEmpty() && out.get(out.size() - 1)[1] == from) {
          out.get(out.size() - 1)[1] = to;
        } else {
          out.add(new int[] {from, to});
        }
      }
      return out;
    }

    private float[] constant(java.util.function.IntFunction<Float> value) {
      float[] flat = new float[(int) n];
      for (int i = 0; i < names.size(); i++) {
        java.util.Arrays.fill(
            flat, (int) offsets[i], (int) (offsets[i] + numels[i]), value.apply(i));
      }
      return flat;
    }

    /**
     * The encoded gradient through the reused direct buffer, decoded on the device; in {@code m}.
     */
    NDArray uploadEncoded(NDManager m, HalfBlocks.Encoded e) {
      NDArray a = HalfBlocks.decode(e, m, staging.get(HalfBlocks.stagingBytes(e.halves().length)));
      if (!a.getDevice().equals(device)) {
        NDArray moved = a.toDevice(device, true);
        a.close();
        return moved;
      }
      return a;
    }

    /** One copy into a reused direct buffer, one to the device; the array belongs to {@code m}. */
    NDArray upload(NDManager m, float[] values) {
      ByteBuffer b = staging.get(4L * values.length);
      HostCopy.put(values, b);
      // over the direct buffer itself (a FloatBuffer would be copied into a fresh direct buffer);
      // on the CPU the array is a view of it, hence the engine-owned duplicate below
      NDArray a = m.create(b, new Shape(values.length), DataType.FLOAT32);
      if (!a.getDevice().equals(device)) {
        NDArray moved = a.toDevice(device, true);
        a.close();
        return moved;
      }
      if (device.isGpu()) {
        return a;
      }
      NDArray owned = a.duplicate();
      a.close();
      return owned;
    }

    /**
     * A float32 constant made on the device by a fill kernel. DJL's {@code op(Number)} copies the
     * number from the heap to the device, which on a GPU waits for the queued kernels: a step would
     * stop the device some twenty times.
     */
    NDArray scalar(NDManager into, float value) {
      return into.full(new Shape(), value, DataType.FLOAT32, device);
    }

    /** A view of tensor i's part of a flat vector, attached to {@code into}. */
    NDArray segment(NDManager into, NDArray flat, int i) {
      NDArray v = flat.get(new NDIndex("{}:{}", offsets[i], offsets[i] + numels[i]));
      v.attach(into);
      return v;
    }

    UpdateSummary step(TrainingState state, NDArray g) {
      PruningCriterion criterion = pruning.criterion();
      long t = state.step();
      double threshold = pruning.thresholdAt(t);
      double lambda = pruning.lambdaAt(t);
      int numPrunable = prunable.length;
      double regularizer = 0;
      try (NDManager tmp = manager.newSubManager()) {
        NDArray gw = g.mul(mask);
        gw.attach(tmp);
        NDArray gs = null;
        if (scores) {
          gs = g.mul(w);
          gs.attach(tmp);
          // no scores outside the prunable matrices: their part of gs is 0 (not in the norm)
          if (flagVectors) {
            gs.muli(prunableFlag);
          } else {
            for (int[] run : others) {
              gs.set(new NDIndex("{}:{}", run[0], run[1]), 0f);
            }
          }
          if (criterion == PruningCriterion.SOFT_MOVEMENT) {
            NDArray sig = s.getNDArrayInternal().sigmoid();
            sig.attach(tmp);
            if (numPrunable > 0) {
              regularizer =
                  sig.mul(inverseNumel).toType(DataType.FLOAT64, false).sum().getDouble()
                      / numPrunable;
            }
            if (lambda != 0) {
              NDArray r = sig.neg().add(scalar(tmp, 1f)).mul(sig);
              r.muli(inverseNumel).muli(scalar(tmp, (float) (lambda / numPrunable)));
              gs.addi(r);
            }
          }
        }
        double sq = squaredNorm(tmp, gw, gs);
        if (!Double.isFinite(sq)) {
          throw notFinite(g);
        }
        double norm = Math.sqrt(sq);
        double clip = GradientClipper.coefficient(norm, optimizer.maxGradNorm());
        float cf = (float) clip;
        if (cf != 1f) {
          gw.muli(scalar(tmp, cf));
          if (gs != null) {
            gs.muli(scalar(tmp, cf));
          }
        }
        AdamW.StepCoefficients cw = optimizer.weightCoefficients(t, true);
        AdamW.StepCoefficients cs = optimizer.scoreCoefficients(t);
        // dL/dS used W before this step's update (gs is computed above), as autograd does
        adamW(w, gw, m1, v1, cw, true);
        if (gs != null) {
          adamW(s, gs, sm, sv, cs, false);
        }
        state.advance();
        dirty = true;
        maskSet = null;
        double next = pruning.thresholdAt(t + 1);
        if (criterion.recomputesMasks()) {
          recomputeMasks(next);
        }
        List<SparsityReport.Entry> entries = new ArrayList<>();
        for (int j = 0; j < prunable.length; j++) {
          entries.add(
              new SparsityReport.Entry(names.get(prunable[j]), numels[prunable[j]], kept[j]));
        }
        regularizer =
            criterion == PruningCriterion.SOFT_MOVEMENT && numPrunable > 0 ? regularizer : 0;
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
    }

    /**
     * Sum of squares of {@code a} and {@code b} (may be null) in float64, as the clip norm sums on
     * the host: each float64 copy's dot product with itself (squares of floats are exact in
     * float64), the two added on the device as the host would add them, read once.
     */
    private double squaredNorm(NDManager tmp, NDArray a, NDArray b) {
      NDArray sum = dotSelf(tmp, a);
      if (b != null) {
        sum = sum.add(dotSelf(tmp, b));
        sum.attach(tmp);
      }
      return sum.getDouble();
    }

    private NDArray dotSelf(NDManager tmp, NDArray x) {
      try (NDArray d = x.toType(DataType.FLOAT64, false)) {
        NDArray dot = d.dot(d);
        dot.attach(tmp);
        return dot;
      }
    }

    /** The message DriverUpdate gives: the first tensor whose gradient is not finite. */
    private IllegalArgumentException notFinite(NDArray g) {
      for (int i = 0; i < names.size(); i++) {
        double sq;
        try (NDManager tmp = manager.newSubManager();
            NDArray seg = segment(tmp, g, i);
            NDArray d = seg.toType(DataType.FLOAT64, false);
            NDArray x = d.square();
            NDArray sum = x.sum()) {
          sq = sum.getDouble();
        }
        if (!Double.isFinite(sq)) {
          return new IllegalArgumentException(
              "gradient of '"
                  + names.get(i)
                  + "' is not finite (squared norm "
                  + sq
                  + "); state left unchanged");
        }
      }
      return new IllegalArgumentException("gradient is not finite; state left unchanged");
    }

    /**
     * AdamW in place, in DriverUpdate's order of float operations: m = b1 m + a1 g; v = b2 v + (a2
     * g) g; p = p - (step m) / (sqrt(v) + eps); p = p - decay p (on {@link #decayRuns} when {@code
     * decayed}).
     */
    private void adamW(
        NDArray p, NDArray grad, NDArray m, NDArray v, AdamW.StepCoefficients c, boolean decayed) {
      try (NDManager tmp = manager.newSubManager()) {
        m.muli(scalar(tmp, c.beta1()));
        NDArray a = grad.mul(scalar(tmp, c.oneMinusBeta1()));
        a.attach(tmp);
        m.addi(a);
        v.muli(scalar(tmp, c.beta2()));
        NDArray b = grad.mul(scalar(tmp, c.oneMinusBeta2()));
        b.attach(tmp);
        b.muli(grad);
        v.addi(b);
        NDArray den = sqrt(tmp, v);
        den.addi(scalar(tmp, c.eps()));
        NDArray u = m.mul(scalar(tmp, c.stepSize()));
        u.attach(tmp);
        u.divi(den);
        p.subi(u);
        if (c.decay() != 0f && decayed && flagVectors) {
          NDArray d = p.mul(scalar(tmp, c.decay()));
          d.attach(tmp);
          d.muli(decayFlag);
          p.subi(d);
        } else if (c.decay() != 0f && decayed) {
          // p - decay p on the runs of tensors with weight decay (views: in place in p)
          for (int[] run : decayRuns) {
            NDArray seg = p.get(new NDIndex("{}:{}", run[0], run[1]));
            seg.attach(tmp);
            NDArray d = seg.mul(scalar(tmp, c.decay()));
            d.attach(tmp);
            seg.subi(d);
          }
        }
      }
    }

    /**
     * The correctly rounded float32 square root, as Java's {@code (float) Math.sqrt}. CUDA's float
     * sqrt is; libtorch's CPU kernel goes through MKL's vsSqrt, which may be 1 ulp off, so there it
     * is taken in float64 and rounded (exact: float64 holds twice float32's precision).
     */
    private NDArray sqrt(NDManager tmp, NDArray v) {
      if (device.isGpu()) {
        NDArray r = v.sqrt();
        r.attach(tmp);
        return r;
      }
      NDArray wide = v.toType(DataType.FLOAT64, false);
      wide.attach(tmp);
      NDArray root = wide.sqrt();
      root.attach(tmp);
      NDArray r = root.toType(DataType.FLOAT32, false);
      r.attach(tmp);
      return r;
    }

    /** Masks for {@code threshold}; fills {@link #kept}. */
    void recomputeMasks(double threshold) {
      PruningCriterion criterion = pruning.criterion();
      maskSet = null;
      dropPendingBits();
      if (prunable.length == 0) {
        return;
      }
      try (NDManager tmp = manager.newSubManager()) {
        NDArray[] rows = new NDArray[prunable.length];
        if (criterion == PruningCriterion.SOFT_MOVEMENT) {
          softMasks(tmp, threshold, rows);
        } else if (pruning.globalTopK()) {
          globalTopK(tmp, threshold, rows);
        } else {
          // one top-k per group of same-sized matrices, stacked into rows; every group's
          // selection is queued before the one read of all their thresholds and counts
          LinkedHashMap<Long, List<Integer>> groups = new LinkedHashMap<>();
          for (int j = 0; j < prunable.length; j++) {
            groups.computeIfAbsent(numels[prunable[j]], k -> new ArrayList<>()).add(j);
          }
          List<Selection> selections = new ArrayList<>();
          for (List<Integer> members : groups.values()) {
            long rowLength = numels[prunable[members.get(0)]];
            int k = (int) MaskComputer.keepCount(threshold, rowLength);
            selections.add(select(tmp, ranked(tmp, members, false), k, members));
          }
          double[][] read = readAll(tmp, selections);
          List<NDArray> bits = new ArrayList<>();
          List<String> bitRows = new ArrayList<>();
          for (int g = 0; g < selections.size(); g++) {
            Selection sel = selections.get(g);
            NDArray chosen = sel.keep(tmp, read[g]);
            NDArray b = DevicePacking.bitRows(chosen);
            b.attach(manager);
            bits.add(b);
            for (int j : sel.members) {
              bitRows.add(names.get(prunable[j]));
            }
            NDArray keep = chosen.toType(DataType.FLOAT32, false).reshape(chosen.size());
            keep.attach(tmp);
            // the rows in one call (an index call per row costs more than the split)
            NDList split =
                sel.members.size() == 1 ? new NDList(keep) : keep.split(sel.members.size());
            split.attach(tmp);
            for (int r = 0; r < sel.members.size(); r++) {
              rows[sel.members.get(r)] = split.get(r);
              kept[sel.members.get(r)] = sel.k;
            }
          }
          pendingBits = bits;
          pendingRows = bitRows;
        }
        // the new mask vector: the rows in place of the prunable matrices, ones elsewhere
        NDList parts = new NDList();
        int j = 0;
        int run = 0;
        for (int i = 0; i < names.size(); i++) {
          if (j < prunable.length && prunable[j] == i) {
            NDArray row = rows[j++];
            if (row.getDataType() != DataType.FLOAT32) {
              row = row.toType(DataType.FLOAT32, false);
              row.attach(tmp);
            }
            parts.add(row.getShape().dimension() == 1 ? row : row.reshape(row.size()));
          } else if (run < others.size() && others.get(run)[0] == offsets[i]) {
            parts.add(onesRuns[run++]);
          }
        }
        NDArray next = NDArrays.concat(parts);
        next.attach(manager);
        mask.close();
        mask = next;
      }
    }

    /**
     * The values top-k ranks for the prunable matrices {@code members} (indices into {@link
     * #prunable}): their scores, or |W| for magnitude (taken once over the whole array). One row
     * per matrix (stacked: they must have the same size), or with {@code joined} all of them one
     * after the other in a single row.
     */
    private NDArray ranked(NDManager tmp, List<Integer> members, boolean joined) {
      NDList views = new NDList();
      long total = 0;
      for (int j : members) {
        views.add(pruning.criterion() == PruningCriterion.MAGNITUDE ? weightRows[j] : scoreRows[j]);
        total += numels[prunable[j]];
      }
      NDArray x;
      if (views.size() == 1) {
        x = views.get(0).reshape(1, total);
      } else if (joined) {
        NDArray all = NDArrays.concat(views);
        all.attach(tmp);
        x = all.reshape(1, total);
      } else {
        x = NDArrays.stack(views);
      }
      x.attach(tmp);
      if (pruning.criterion() == PruningCriterion.MAGNITUDE) {
        x = x.abs();
        x.attach(tmp);
      }
      return x;
    }

    /**
     * Per row of {@code x} (b rows of n values) the k largest, ties to the lowest index: the k-th
     * largest value t of each row, then every value above t and the first (k - #above) equal to t.
     * Returns a boolean (b, n) array.
     */
    private NDArray topK(NDManager tmp, NDArray x, int k, List<Integer> members) {
      Selection sel = select(tmp, x, k, members);
      return sel.keep(tmp, readAll(tmp, List.of(sel))[0]);
    }

    /**
     * The device half of {@link #topK}: the k-th largest value t of each row, the entries at or
     * above it and their count, queued without reading anything. {@link #readAll} reads the
     * thresholds and counts of several selections in one copy: each read waits for the device's
     * queue. Where a row has exactly k entries at or above t (no tie at t crosses the boundary, the
     * common case) those are the selection, one comparison over the matrix.
     */
    private Selection select(NDManager tmp, NDArray x, int k, List<Integer> members) {
      long b = x.getShape().get(0);
      if (k == 0) {
        return new Selection(x, k, members, null, null, null);
      }
      // topK on the stacked rows: on the H100 an ascending sort's column n - k took 1.5x as long,
      // one topK per matrix 3x (docs/results.md, run 9)
      NDList top = x.topK(k, 1, true, false);
      top.attach(tmp);
      NDArray t = top.get(0).min(new int[] {1}, true);
      t.attach(tmp);
      NDArray atLeast = x.gte(t);
      atLeast.attach(tmp);
      // thresholds, then counts at or above them: float64 holds both exactly
      NDArray summary =
          NDArrays.concat(
              new NDList(
                  t.reshape(b).toType(DataType.FLOAT64, false),
                  atLeast.sum(new int[] {1}).toType(DataType.FLOAT64, false)));
      summary.attach(tmp);
      return new Selection(x, k, members, t, atLeast, summary);
    }

    /** The summaries of {@code selections}, read in one copy (one wait for the device). */
    private double[][] readAll(NDManager tmp, List<Selection> selections) {
      NDList parts = new NDList();
      for (Selection sel : selections) {
        if (sel.summary != null) {
          parts.add(sel.summary);
        }
      }
      double[][] out = new double[selections.size()][];
      if (parts.isEmpty()) {
        return out;
      }
      NDArray all = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts);
      all.attach(tmp);
      double[] values = all.toDoubleArray();
      int at = 0;
      for (int g = 0; g < selections.size(); g++) {
        Selection sel = selections.get(g);
        if (sel.summary != null) {
          int len = (int) sel.summary.size();
          out[g] = java.util.Arrays.copyOfRange(values, at, at + len);
          at += len;
        }
      }
      return out;
    }

    /** One top-k's arrays on the device; {@code summary} = [thresholds, counts at or above]. */
    private final class Selection {
      final NDArray x;
      final int k;
      final List<Integer> members;
      final NDArray t;
      final NDArray atLeast;
      final NDArray summary;

      Selection(
          NDArray x, int k, List<Integer> members, NDArray t, NDArray atLeast, NDArray summary) {
        this.x = x;
        this.k = k;
        this.members = members;
        this.t = t;
        this.atLeast = atLeast;
        this.summary = summary;
      }

      /** The boolean keep pattern, from the summary as read. */
      NDArray keep(NDManager tmp, double[] read) {
        long b = x.getShape().get(0);
        long n = x.getShape().get(1);
        if (k == 0) {
          return tmp.zeros(new Shape(b, n), DataType.BOOLEAN, device);
        }
        List<Integer> tied = new ArrayList<>();
        for (int r = 0; r < b; r++) {
          if (Double.isNaN(read[r])) {
            throw nanError(members.get(r));
          }
          if (read[(int) b + r] > k) {
            tied.add(r);
          }
        }
        if (tied.isEmpty()) {
          return atLeast;
        }
        if (tied.size() == b) {
          return firstK(tmp, x, t);
        }
        // A tie across the boundary is common (one float value shared by two of a matrix's
        // million scores at the k-th place: a few of BERT-base's 72 rows a step), and rare in
        // each row, so only those rows are redone, in place in the group's pattern: the whole
        // group's running count of ties costs a pass of int64 over every row.
        for (int r : tied) {
          NDArray row = x.get(r);
          row.attach(tmp);
          NDArray threshold = t.get(r).reshape(1, 1);
          threshold.attach(tmp);
          atLeast.set(new NDIndex("{}", r), firstK(tmp, row.reshape(1, n), threshold).get(0));
        }
        return atLeast;
      }

      /**
       * Per row of {@code rows} (b, n): every value above the row's threshold in {@code thresholds}
       * (b, 1), and of those equal to it the first (k - #above) by index: a running count of the
       * ties along each row, compared on the device.
       */
      private NDArray firstK(NDManager tmp, NDArray rows, NDArray thresholds) {
        NDArray above = rows.gt(thresholds);
        above.attach(tmp);
        NDArray equal = rows.eq(thresholds);
        equal.attach(tmp);
        NDArray rank = equal.toType(DataType.INT64, false).cumSum(1);
        rank.attach(tmp);
        NDArray needed =
            above
                .sum(new int[] {1}, true)
                .toType(DataType.INT64, false)
                .neg()
                .add(tmp.full(new Shape(), k, DataType.INT64, device));
        needed.attach(tmp);
        NDArray keep = above.logicalOr(equal.logicalAnd(rank.lte(needed)));
        keep.attach(tmp);
        return keep;
      }
    }

    private void globalTopK(NDManager tmp, double threshold, NDArray[] rows) {
      long total = 0;
      List<Integer> members = new ArrayList<>();
      for (int j = 0; j < prunable.length; j++) {
        total += numels[prunable[j]];
        members.add(j);
      }
      int k = (int) MaskComputer.keepCount(threshold, total);
      NDArray x = ranked(tmp, members, true);
      NDArray keep = topK(tmp, x, k, List.of(0)).reshape(total).toType(DataType.FLOAT32, false);
      keep.attach(tmp);
      long from = 0;
      NDList slices = new NDList();
      for (int j = 0; j < prunable.length; j++) {
        rows[j] = keep.get(new NDIndex("{}:{}", from, from + numels[prunable[j]]));
        slices.add(rows[j].toType(DataType.INT64, false).sum());
        from += numels[prunable[j]];
      }
      NDArray counts = NDArrays.stack(slices);
      counts.attach(tmp);
      kept = counts.toLongArray();
    }

    /**
     * sigmoid(S) > tau as S > logit(tau); at least {@link MaskComputer#softFloor} kept per matrix.
     */
    private void softMasks(NDManager tmp, double tau, NDArray[] rows) {
      if (!(tau >= 0 && tau <= 1)) {
        throw new IllegalArgumentException(
            "soft threshold of '" + names.get(prunable[0]) + "' must be in [0, 1], got " + tau);
      }
      double cut =
          tau <= 0
              ? Double.NEGATIVE_INFINITY
              : tau >= 1 ? Double.POSITIVE_INFINITY : Math.log(tau / (1 - tau));
      // float v > double cut  <=>  v > (float) cut, or v >= (float) cut where rounding went up
      float cf = (float) cut;
      NDArray pass = (double) cf > cut ? s.gte(scalar(tmp, cf)) : s.gt(scalar(tmp, cf));
      pass.attach(tmp);
      NDArray keepAll = pass.toType(DataType.FLOAT32, false);
      NDList sums = new NDList();
      for (int j = 0; j < prunable.length; j++) {
        rows[j] = segment(tmp, keepAll, prunable[j]);
        sums.add(rows[j].toType(DataType.INT64, false).sum());
      }
      NDArray counts = NDArrays.stack(sums);
      counts.attach(tmp);
      long[] c = counts.toLongArray();
      for (int j = 0; j < prunable.length; j++) {
        int i = prunable[j];
        int floor = MaskComputer.softFloor((int) numels[i]);
        kept[j] = c[j];
        if (c[j] < floor) {
          NDArray x = segment(tmp, s, i).reshape(1, numels[i]);
          x.attach(tmp);
          rows[j] = topK(tmp, x, floor, List.of(j)).reshape(numels[i]);
          kept[j] = floor;
        }
      }
      NDArray isNan = s.isNaN();
      isNan.attach(tmp);
      try (NDArray nan = isNan.any()) {
        if (nan.getBoolean()) {
          for (int j = 0; j < prunable.length; j++) {
            try (NDManager m = manager.newSubManager();
                NDArray seg = segment(m, s, prunable[j]);
                NDArray any = seg.isNaN().any()) {
              if (any.getBoolean()) {
                throw nanError(j);
              }
            }
          }
        }
      }
    }

    private IllegalArgumentException nanError(int j) {
      int i = prunable[j];
      NDArray src = pruning.criterion() == PruningCriterion.MAGNITUDE ? w : s;
      float[] v;
      try (NDManager m = manager.newSubManager();
          NDArray seg = segment(m, src, i)) {
        v = seg.toFloatArray();
      }
      int at = 0;
      while (at < v.length && !Float.isNaN(v[at])) {
        at++;
      }
      return new IllegalArgumentException(
          "'" + names.get(i) + "' holds NaN (first at flat index " + at + ")");
    }

    /** Kept entries per prunable matrix, counted on the device. */
    private long[] countKept() {
      if (prunable.length == 0) {
        return new long[0];
      }
      try (NDManager tmp = manager.newSubManager()) {
        NDList sums = new NDList();
        for (int j = 0; j < prunable.length; j++) {
          NDArray seg = segment(tmp, mask, prunable[j]);
          sums.add(seg.neq(scalar(tmp, 0f)).toType(DataType.INT64, false).sum());
        }
        NDArray counts = NDArrays.stack(sums);
        counts.attach(tmp);
        return counts.toLongArray();
      }
    }

    void dropPendingBits() {
      if (pendingBits != null) {
        pendingBits.forEach(NDArray::close);
      }
      pendingBits = null;
      pendingRows = null;
    }

    /** Copies every array into the host tensors (when something changed here). */
    void toHost(TrainingState state) {
      if (!dirty) {
        return;
      }
      scatter(w, i -> state.weightsOnHost().get(names.get(i)).data());
      scatter(m1, i -> state.expAvgOnHost().get(names.get(i)).data());
      scatter(v1, i -> state.expAvgSqOnHost().get(names.get(i)).data());
      scatter(
          mask,
          i ->
              state.masksOnHost().containsKey(names.get(i))
                  ? state.masksOnHost().get(names.get(i)).data()
                  : null);
      if (scores) {
        scatter(
            s,
            i ->
                state.scoresOnHost().containsKey(names.get(i))
                    ? state.scoresOnHost().get(names.get(i)).data()
                    : null);
        scatter(
            sm,
            i ->
                state.scoresOnHost().containsKey(names.get(i))
                    ? state.expAvgOnHost().get(ParameterNames.scoresName(names.get(i))).data()
                    : null);
        scatter(
            sv,
            i ->
                state.scoresOnHost().containsKey(names.get(i))
                    ? state.expAvgSqOnHost().get(ParameterNames.scoresName(names.get(i))).data()
                    : null);
      }
      dirty = false;
    }

    private void scatter(NDArray flat, java.util.function.IntFunction<float[]> target) {
      float[] all = io.capprune.core.tensor.NDArrays.download(flat);
      for (int i = 0; i < names.size(); i++) {
        float[] d = target.apply(i);
        if (d != null) {
          System.arraycopy(all, (int) offsets[i], d, 0, d.length);
        }
      }
    }

    @Override
    public void close() {
      owner = null;
      manager.close();
      staging.close();
      if (resident == this) {
        resident = null;
      }
    }
  }
}
