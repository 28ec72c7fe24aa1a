package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import io.capprune.core.tensor.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bank.RepresentationBank.Negatives;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * The CAP training objective for one batch on one shard (cap-reference 1.6):
 * wCe·CE + Σ_{PRE, FINE, SNAP present} (unsup + sup) + wKd·KD. Teacher logits and bank vectors
 * are read from the shard's bank (design-brief decision 5: no teacher forward per step).
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
   * @param logits [B, C] student logits with gradient
   * @param representation [B, H] normalised student vector ({@link Representation}) with gradient
   * @param targets the batch's labels or regression scores, in batch order
   * @param bank this shard's bank
   * @param localRows the batch's rows in the bank
   * @param samplingSeed seeds the extra-negative draws of this step; each bank gets its own stream
   */
  public Output compute(NDArray logits, NDArray representation, Targets targets,
      RepresentationBank bank, int[] localRows, long samplingSeed) {
    int b = localRows.length;
    if (targets.size() != b) {
      throw new IllegalArgumentException(
          "targets has " + targets.size() + " entries but the batch has " + b + " rows");
    }
    int[] bankLabels = bank.labels(localRows);
    if (!targets.isRegression() && bankLabels != null) {
      for (int i = 0; i < b; i++) {
        if (bankLabels[i] != targets.classes()[i]) {
          throw new IllegalArgumentException("batch row " + i + " has label " + targets.classes()[i]
              + " but bank row " + localRows[i] + " (global index " + bank.globalIndex(localRows[i])
              + ") has label " + bankLabels[i]);
        }
      }
    }
    NDManager manager = logits.getManager();
    DataType type = logits.getDataType();

    NDArray ce = ClassificationLoss.compute(logits, targets);
    NDArray total = ce.mul(NDArrays.scalar(manager, config.wCe(), ce.getDataType()));

    NDArray kd = manager.zeros(new Shape(), type);
    if (config.wKd() > 0) {
      if (!bank.hasTeacherLogits()) {
        throw new IllegalStateException(
            "wKd is " + config.wKd() + " but the bank holds no teacher logits");
      }
      if (bank.numClasses() != logits.getShape().get(1)) {
        throw new IllegalArgumentException("bank teacher logits have " + bank.numClasses()
            + " classes but student logits are " + logits.getShape());
      }
      NDArray teacher = manager.create(bank.teacherLogits(localRows), new Shape(b, bank.numClasses()));
      kd = Distillation.compute(logits, teacher, config.kdTemperature());
      total = total.add(kd.mul(NDArrays.scalar(manager, config.wKd(), kd.getDataType())));
    }

    Map<Kind, ContrastiveLoss.Result> results = new EnumMap<>(Kind.class);
    long[] batchIndex = bank.globalIndices(localRows);
    for (Kind kind : Kind.values()) {
      if (!config.uses(kind) || bank.slices(kind) == 0) {
        continue;
      }
      NDArray slices = bank.gather(manager, kind, localRows);
      Negatives negatives = bank.sampleNegatives(kind, config.extraExamples(), localRows,
          seedFor(samplingSeed, kind));
      NDArray extras = negatives.columns() == 0 ? null : negatives.toNDArray(manager);
      ContrastiveLoss.Result result = contrastive.compute(representation, batchIndex, bankLabels,
          slices, extras, negatives.globalIndex(), negatives.labels());
      results.put(kind, result);
      total = total.add(result.total().toType(type, false));
    }

    LossTerms terms = new LossTerms(value(ce), value(kd), termValue(results, Kind.PRE),
        termValue(results, Kind.SNAP), termValue(results, Kind.FINE), value(total));
    return new Output(total, ce, kd, Collections.unmodifiableMap(results), terms);
  }

  /** Independent streams per bank from one step seed (the reference draws per call as well). */
  static long seedFor(long samplingSeed, Kind kind) {
    return samplingSeed ^ (0x9E3779B97F4A7C15L * (kind.ordinal() + 1));
  }

  private static double termValue(Map<Kind, ContrastiveLoss.Result> results, Kind kind) {
    ContrastiveLoss.Result r = results.get(kind);
    return r == null ? 0 : value(r.total());
  }

  private static double value(NDArray x) {
    return x.toType(DataType.FLOAT64, false).getDouble();
  }

  /**
   * @param total the scalar to back-propagate
   * @param ce unweighted task loss
   * @param kd unweighted distillation loss (0 when off)
   * @param contrastive per bank that took part, its two terms
   */
  public record Output(NDArray total, NDArray ce, NDArray kd,
      Map<Kind, ContrastiveLoss.Result> contrastive, LossTerms terms) {}
}
