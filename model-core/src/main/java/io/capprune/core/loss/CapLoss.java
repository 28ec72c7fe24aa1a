package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.Negatives;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.tensor.NDArrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * The CAP training objective for one batch on one shard (docs/cap-math.md §1.6): wCe·CE + Σ_{PRE,
 * FINE, SNAP present} (unsup + sup) + wKd·KD. Teacher logits and bank vectors are read from the
 * shard's bank (docs/decisions.md decision 5: no teacher forward per step).
 */
public final class CapLoss {

  private final CapLossConfig config;
  private final ContrastiveLoss contrastive;

  public CapLoss(CapLossConfig config) {
    this.config = config;
    this.contrastive = new ContrastiveLoss(config.tau(), config.wU(), config.wS());
  }

  public CapLossConfig config() {
    return config;
  }

  /**
   * From host arrays, for tests and one-off callers: copies the bank to the logits' device and the
   * rows and targets with it, checks the batch's labels against the bank's, and calls {@link
   * #compute(NDArray, NDArray, NDArray, boolean, DeviceBank, NDArray)}. The extra negatives come
   * from the engine's generator (seed it with DjlRuntime.seed for a repeatable draw).
   */
  public Output compute(
      NDArray logits,
      NDArray representation,
      Targets targets,
      RepresentationBank bank,
      int[] localRows) {
    checkBatch(targets, bank, localRows);
    NDManager manager = logits.getManager();
    DeviceBank device = DeviceBank.upload(manager, bank);
    NDArray target;
    if (targets.isRegression()) {
      target = NDArrays.owned(manager.create(targets.scores()));
    } else {
      ClassificationLoss.checkLabels(logits.getShape(), targets.classes());
      target = NDArrays.owned(manager.create(NDArrays.toLongs(targets.classes())));
    }
    return compute(
        logits,
        representation,
        target,
        targets.isRegression(),
        device,
        NDArrays.owned(manager.create(NDArrays.toLongs(localRows))));
  }

  /**
   * Host check that a batch's targets belong to the bank rows it names (the labels the bank's
   * supervised terms use must be the batch's). Workers run it once per shard, not per step.
   */
  public static void checkBatch(Targets targets, RepresentationBank bank, int[] localRows) {
    int b = localRows.length;
    if (targets.size() != b) {
      throw new IllegalArgumentException(
          "targets has " + targets.size() + " entries but the batch has " + b + " rows");
    }
    int[] bankLabels = bank.labels(localRows);
    if (!targets.isRegression() && bankLabels != null) {
      for (int i = 0; i < b; i++) {
        if (bankLabels[i] != targets.classes()[i]) {
          throw new IllegalArgumentException(
              "batch row "
                  + i
                  + " has label "
                  + targets.classes()[i]
                  + " but bank row "
                  + localRows[i]
                  + " (global index "
                  + bank.globalIndex(localRows[i])
                  + ") has label "
                  + bankLabels[i]);
        }
      }
    }
  }

  /**
   * The objective on the device: nothing here reads a value back to the host, so a GPU never waits
   * for the loss. Extra negatives are drawn with the engine's generator, one draw per bank in the
   * order PRE, FINE, SNAP.
   *
   * @param logits [B, C] student logits with gradient
   * @param representation [B, H] normalised student vector ({@link Representation}) with gradient
   * @param targets [B] int64 class ids, or [B] float scores when {@code regression}
   * @param bank this shard's bank on the logits' device
   * @param rows [B] int64 the batch's rows in the bank
   */
  public Output compute(
      NDArray logits,
      NDArray representation,
      NDArray targets,
      boolean regression,
      DeviceBank bank,
      NDArray rows) {
    NDManager manager = logits.getManager();
    DataType type = logits.getDataType();

    NDArray ce = ClassificationLoss.compute(logits, targets, regression);
    NDArray total = ce.mul(NDArrays.scalar(manager, config.wCe(), type));

    NDArray kd = manager.zeros(new Shape(), type);
    if (config.wKd() > 0) {
      if (!bank.hasTeacherLogits()) {
        throw new IllegalStateException(
            "wKd is " + config.wKd() + " but the bank holds no teacher logits");
      }
      if (bank.numClasses() != logits.getShape().get(1)) {
        throw new IllegalArgumentException(
            "bank teacher logits have "
                + bank.numClasses()
                + " classes but student logits are "
                + logits.getShape());
      }
      kd =
          regression && config.regressionMse()
              ? Distillation.meanSquaredError(logits, bank.teacherLogits(rows))
              : Distillation.compute(logits, bank.teacherLogits(rows), config.kdTemperature());
      total = total.add(kd.mul(NDArrays.scalar(manager, config.wKd(), type)));
    }

    Map<Kind, ContrastiveLoss.Result> results = new EnumMap<>(Kind.class);
    ContrastiveLoss.Anchors anchors = null;
    for (Kind kind : Kind.values()) {
      if (!config.uses(kind) || bank.slices(kind) == 0) {
        continue;
      }
      if (anchors == null) {
        anchors =
            new ContrastiveLoss.Anchors(
                representation, representation, bank.globalIndex(rows), bank.labels(rows));
      }
      Negatives negatives = bank.sampleNegatives(kind, config.extraExamples(), rows);
      ContrastiveLoss.Result result =
          contrastive.compute(anchors, bank.gather(kind, rows), negatives);
      results.put(kind, result);
      total = total.add(result.total().toType(type, false));
    }

    NDArray zero = manager.zeros(new Shape(), type);
    NDArray terms =
        ai.djl.ndarray.NDArrays.stack(
            new NDList(
                ce.stopGradient(),
                kd.stopGradient(),
                termOf(results, Kind.PRE, zero),
                termOf(results, Kind.SNAP, zero),
                termOf(results, Kind.FINE, zero),
                total.stopGradient()));
    return new Output(total, ce, kd, Collections.unmodifiableMap(results), terms);
  }

  private static NDArray termOf(
      Map<Kind, ContrastiveLoss.Result> results, Kind kind, NDArray zero) {
    ContrastiveLoss.Result r = results.get(kind);
    return r == null ? zero : r.total().stopGradient();
  }

  /**
   * @param total the scalar to back-propagate
   * @param ce unweighted task loss
   * @param kd unweighted distillation loss (0 when off)
   * @param contrastive per bank that took part, its two terms
   * @param termValues [6] ce, kd, prc, snc, fic, total on the device (see {@link LossTerms})
   */
  public record Output(
      NDArray total,
      NDArray ce,
      NDArray kd,
      Map<Kind, ContrastiveLoss.Result> contrastive,
      NDArray termValues) {

    /** The plain values: one read from the device. */
    public LossTerms terms() {
      double[] v = termValues.toType(DataType.FLOAT64, false).toDoubleArray();
      return new LossTerms(v[0], v[1], v[2], v[3], v[4], v[5]);
    }
  }
}
