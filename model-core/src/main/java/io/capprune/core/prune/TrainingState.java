package io.capprune.core.prune;

import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the driver owns between steps (docs/decisions.md decision 4): fp32 weights in Hugging Face
 * names, movement scores and masks of the prunable matrices, AdamW moments, the optimizer step.
 * {@link DriverUpdate#apply} updates the arrays in place, so no 85 M-element array is allocated per
 * step; read the state between steps only.
 *
 * <p>A {@link DeviceDriverUpdate} keeps the arrays on its device between steps; then every accessor
 * first copies them into these host tensors (once per change), so snapshots and evaluation read the
 * current state. Changing the host tensors while a device holds the state is lost: call {@link
 * #releaseDevice} first (the device update uploads them again at its next step).
 *
 * <p>Scores and masks are keyed by the weight they belong to. Moments are keyed by parameter name;
 * the moments of scores use the reference's name ({@code ...query.mask_scores}, see {@link
 * ParameterNames#scoresName}), so snapshots of this state read like the reference's state dict.
 */
public final class TrainingState implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  private final LinkedHashMap<String, HostTensor> weights;
  private final Set<String> frozen;
  private final LinkedHashMap<String, HostTensor> scores;
  private final LinkedHashMap<String, HostTensor> masks;
  private final LinkedHashMap<String, HostTensor> expAvg;
  private final LinkedHashMap<String, HostTensor> expAvgSq;
  private final long encoderOtherParams;
  private long step;

  /**
   * Set while a {@link DeviceDriverUpdate} holds this state on its device: the arrays there are
   * then the current ones, and every accessor below first copies them into the host tensors.
   */
  private transient DeviceDriverUpdate.Resident resident;

  /** Restores a state (for example from a snapshot); every map is checked against the weights. */
  public TrainingState(
      LinkedHashMap<String, HostTensor> weights,
      Set<String> frozen,
      LinkedHashMap<String, HostTensor> scores,
      LinkedHashMap<String, HostTensor> masks,
      LinkedHashMap<String, HostTensor> expAvg,
      LinkedHashMap<String, HostTensor> expAvgSq,
      long step) {
    this.weights = weights;
    this.frozen = Collections.unmodifiableSet(new LinkedHashSet<>(frozen));
    this.scores = scores;
    this.masks = masks;
    this.expAvg = expAvg;
    this.expAvgSq = expAvgSq;
    this.step = step;
    validate();
    this.encoderOtherParams = SparsityReport.encoderOtherParams(weights);
  }

  /**
   * A state before the first step: scores 0 (the reference's {@code mask_init constant, mask_scale
   * 0}) when {@code withScores}, masks all ones, moments 0, step 0. Takes ownership of the tensors.
   */
  public static TrainingState fresh(
      LinkedHashMap<String, HostTensor> weights, boolean withScores, boolean freezeEmbeddings) {
    Set<String> frozen = new LinkedHashSet<>();
    LinkedHashMap<String, HostTensor> scores = new LinkedHashMap<>();
    LinkedHashMap<String, HostTensor> masks = new LinkedHashMap<>();
    LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
    LinkedHashMap<String, HostTensor> v = new LinkedHashMap<>();
    for (Map.Entry<String, HostTensor> e : weights.entrySet()) {
      String name = e.getKey();
      int[] shape = e.getValue().shape();
      if (freezeEmbeddings && ParameterNames.isEmbedding(name)) {
        frozen.add(name);
        continue;
      }
      m.put(name, HostTensor.zeros(shape));
      v.put(name, HostTensor.zeros(shape));
      if (ParameterNames.isPrunable(name)) {
        HostTensor ones = HostTensor.zeros(shape);
        Arrays.fill(ones.data(), 1f);
        masks.put(name, ones);
        if (withScores) {
          scores.put(name, HostTensor.zeros(shape));
          m.put(ParameterNames.scoresName(name), HostTensor.zeros(shape));
          v.put(ParameterNames.scoresName(name), HostTensor.zeros(shape));
        }
      }
    }
    return new TrainingState(weights, frozen, scores, masks, m, v, 0);
  }

  private void validate() {
    if (step < 0) {
      throw new IllegalArgumentException("training state: step must be >= 0, got " + step);
    }
    for (String f : frozen) {
      if (!weights.containsKey(f)) {
        throw new IllegalArgumentException(
            "training state: frozen tensor '" + f + "' is not a weight");
      }
    }
    List<String> expectedMoments = new ArrayList<>();
    for (Map.Entry<String, HostTensor> e : weights.entrySet()) {
      String name = e.getKey();
      HostTensor w = e.getValue();
      boolean prunable = ParameterNames.isPrunable(name);
      if (prunable) {
        checkSame("mask", name, masks.get(name), w);
        if (!scores.isEmpty()) {
          checkSame("scores", name, scores.get(name), w);
        }
      }
      if (!frozen.contains(name)) {
        expectedMoments.add(name);
        if (prunable && !scores.isEmpty()) {
          expectedMoments.add(ParameterNames.scoresName(name));
        }
      }
    }
    checkKeys("mask", masks.keySet());
    checkKeys("scores", scores.keySet());
    if (frozen.stream().anyMatch(ParameterNames::isPrunable)) {
      throw new IllegalArgumentException(
          "training state: a prunable matrix cannot be frozen: "
              + frozen.stream().filter(ParameterNames::isPrunable).findFirst().orElseThrow());
    }
    checkMoments("exp_avg", expAvg, expectedMoments);
    checkMoments("exp_avg_sq", expAvgSq, expectedMoments);
  }

  private void checkKeys(String what, Set<String> keys) {
    for (String k : keys) {
      if (!weights.containsKey(k) || !ParameterNames.isPrunable(k)) {
        throw new IllegalArgumentException(
            "training state: " + what + " given for '" + k + "', which is not a prunable weight");
      }
    }
  }

  private void checkMoments(String what, Map<String, HostTensor> moments, List<String> expected) {
    for (String name : expected) {
      HostTensor ref =
          weights.get(
              name.endsWith("." + ParameterNames.MASK_SCORES)
                  ? name.substring(0, name.length() - ParameterNames.MASK_SCORES.length())
                      + "weight"
                  : name);
      checkSame(what, name, moments.get(name), ref);
    }
    if (moments.size() != expected.size()) {
      for (String k : moments.keySet()) {
        if (!expected.contains(k)) {
          throw new IllegalArgumentException(
              "training state: "
                  + what
                  + " given for '"
                  + k
                  + "', which is not a trainable parameter");
        }
      }
    }
  }

  private static void checkSame(String what, String name, HostTensor t, HostTensor w) {
    checkShape(what, name, t, w, " but the weight has ");
  }

  /** {@code t} exists and has {@code ref}'s shape; the message says what {@code ref} is. */
  private static void checkShape(
      String what, String name, HostTensor t, HostTensor ref, String refSays) {
    if (t == null) {
      throw new IllegalArgumentException("training state: no " + what + " for '" + name + "'");
    }
    if (!t.sameShape(ref)) {
      throw new IllegalArgumentException(
          "training state: "
              + what
              + " of '"
              + name
              + "' has shape "
              + Arrays.toString(t.shape())
              + refSays
              + Arrays.toString(ref.shape()));
    }
  }

  public Map<String, HostTensor> weights() {
    syncFromDevice();
    return Collections.unmodifiableMap(weights);
  }

  /** Scores by weight name; empty for magnitude pruning. */
  public Map<String, HostTensor> scores() {
    syncFromDevice();
    return Collections.unmodifiableMap(scores);
  }

  public Map<String, HostTensor> masks() {
    syncFromDevice();
    return Collections.unmodifiableMap(masks);
  }

  public Map<String, HostTensor> expAvg() {
    syncFromDevice();
    return Collections.unmodifiableMap(expAvg);
  }

  public Map<String, HostTensor> expAvgSq() {
    syncFromDevice();
    return Collections.unmodifiableMap(expAvgSq);
  }

  public Set<String> frozen() {
    return frozen;
  }

  public boolean isTrainable(String name) {
    return weights.containsKey(name) && !frozen.contains(name);
  }

  /** Optimizer steps taken so far, i.e. the 0-based index of the next step. */
  public long step() {
    return step;
  }

  void advance() {
    step++;
  }

  DeviceDriverUpdate.Resident resident() {
    return resident;
  }

  void resident(DeviceDriverUpdate.Resident r) {
    this.resident = r;
  }

  /** The maps themselves, without copying from the device (for the device update's upload). */
  LinkedHashMap<String, HostTensor> weightsOnHost() {
    return weights;
  }

  LinkedHashMap<String, HostTensor> scoresOnHost() {
    return scores;
  }

  LinkedHashMap<String, HostTensor> masksOnHost() {
    return masks;
  }

  LinkedHashMap<String, HostTensor> expAvgOnHost() {
    return expAvg;
  }

  LinkedHashMap<String, HostTensor> expAvgSqOnHost() {
    return expAvgSq;
  }

  /**
   * Copies the device's arrays into the host tensors if they changed there since the last copy (a
   * no-op when no device holds the state): after it, serialising the state reads no device.
   */
  public void syncFromDevice() {
    if (resident != null) {
      resident.toHost(this);
    }
  }

  /**
   * Copies the state back from a device that holds it and frees the device's arrays; the host
   * tensors are the state again. No-op when no device holds it.
   */
  public void releaseDevice() {
    if (resident != null) {
      DeviceDriverUpdate.Resident r = resident;
      r.toHost(this);
      resident = null;
      r.close();
    }
  }

  /**
   * Frees a device's arrays without copying them back, leaving the host tensors as they were before
   * the device took the state: for a state that is thrown away.
   */
  void discardDevice() {
    if (resident != null) {
      DeviceDriverUpdate.Resident r = resident;
      resident = null;
      r.close();
    }
  }

  /**
   * A copy on the host that shares nothing with this state (the device's arrays first, when a
   * device holds it): what an executor trains on when it keeps the state next to its worker.
   */
  public TrainingState copy() {
    syncFromDevice();
    return new TrainingState(
        copyOf(weights),
        frozen,
        copyOf(scores),
        copyOf(masks),
        copyOf(expAvg),
        copyOf(expAvgSq),
        step);
  }

  /**
   * Makes this state {@code from}: every tensor's values and the step, copied into this state's
   * host tensors (a device that held this state lets go of it first). The two must have the same
   * tensors, names and shapes; the driver takes back a state an executor trained this way.
   */
  public void overwrite(TrainingState from) {
    releaseDevice();
    if (!from.frozen.equals(frozen)) {
      throw new IllegalArgumentException(
          "training state: frozen tensors " + from.frozen + ", expected " + frozen);
    }
    from.syncFromDevice();
    copyInto("weights", from.weights, weights);
    copyInto("scores", from.scores, scores);
    copyInto("masks", from.masks, masks);
    copyInto("moments", from.expAvg, expAvg);
    copyInto("second moments", from.expAvgSq, expAvgSq);
    step = from.step;
  }

  private static LinkedHashMap<String, HostTensor> copyOf(Map<String, HostTensor> m) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    m.forEach((k, v) -> out.put(k, v.copy()));
    return out;
  }

  private static void copyInto(
      String what, Map<String, HostTensor> from, Map<String, HostTensor> into) {
    if (!from.keySet().equals(into.keySet())) {
      throw new IllegalArgumentException(
          "training state: " + what + " of " + from.keySet() + ", expected " + into.keySet());
    }
    into.forEach(
        (name, t) -> {
          HostTensor f = from.get(name);
          checkShape(what, name, f, t, ", expected ");
          System.arraycopy(f.data(), 0, t.data(), 0, t.numel());
        });
  }

  /** Serialised from the host tensors, brought up to date first when a device holds the state. */
  private void writeObject(java.io.ObjectOutputStream out) throws java.io.IOException {
    syncFromDevice();
    out.defaultWriteObject();
  }

  /** Whether a device update holds this state on its device (its arrays are the current ones). */
  public boolean onDevice() {
    return resident != null;
  }

  long encoderOtherParams() {
    return encoderOtherParams;
  }

  /** Non-zero count of the current masks. */
  public SparsityReport sparsity() {
    syncFromDevice();
    return SparsityReport.of(masks, weights);
  }

  /**
   * The weights the next forward pass uses: {@code W * M} for prunable matrices, plain copies for
   * everything else. Always fresh arrays, because a broadcast may keep a reference to what it was
   * given while the next step updates the state in place.
   */
  public LinkedHashMap<String, HostTensor> effectiveWeights() {
    return effectiveWeights(true);
  }

  /**
   * Like {@link #effectiveWeights()}, but without the frozen tensors when {@code includeFrozen} is
   * false: what a training step publishes (frozen tensors travel once per stage, not per step).
   */
  public LinkedHashMap<String, HostTensor> effectiveWeights(boolean includeFrozen) {
    syncFromDevice();
    List<String> names = new ArrayList<>(weights.keySet());
    if (!includeFrozen) {
      names.removeAll(frozen);
    }
    HostTensor[] out = new HostTensor[names.size()];
    ParallelLoops.forEach(
        names.size(),
        i -> {
          HostTensor w = weights.get(names.get(i));
          HostTensor mask = masks.get(names.get(i));
          if (mask == null) {
            out[i] = w.copy();
          } else {
            float[] wd = w.data();
            float[] md = mask.data();
            float[] e = new float[wd.length];
            for (int j = 0; j < e.length; j++) {
              e[j] = wd[j] * md[j];
            }
            out[i] = new HostTensor(w.shape().clone(), e);
          }
        });
    LinkedHashMap<String, HostTensor> result = new LinkedHashMap<>();
    for (int i = 0; i < out.length; i++) {
      result.put(names.get(i), out[i]);
    }
    return result;
  }
}
