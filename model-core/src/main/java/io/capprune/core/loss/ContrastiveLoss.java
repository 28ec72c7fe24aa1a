package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import io.capprune.core.tensor.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The one routine behind PrC, SnC and FiC ({@code calculate_contrastive_loss}, cap-reference
 * 1.3-1.5). The three modules differ only in the bank they pass.
 *
 * <p>Candidates, in the reference's order: for each batch row b the group [z_b detached, G[b,0],
 * ..., G[b,R−1]], then the extra negatives. Scores are z·c/τ; the anchor's own detached copy is set
 * to −1e6 before the log-softmax. For a positive set P (same global index = unsupervised, same
 * label = supervised, self excluded) the loss is
 * −w · Σ_b (1/|P_b|) Σ_{j∈P_b} log p_bj / Σ_b |P_b|: a per-anchor mean divided by the total number
 * of positive pairs, not by B. That quirk scales SnC by 1/R and the supervised term by ≈1/|P|; the
 * published weights (0.1, 10) only make sense with it, so it is kept.
 */
public final class ContrastiveLoss {

  /** The reference's masked_fill value for the anchor's own copy. */
  static final double SELF_SCORE = -1e6;

  private final float tau;
  private final float unsupervisedWeight;
  private final float supervisedWeight;

  public ContrastiveLoss(float tau, float unsupervisedWeight, float supervisedWeight) {
    if (!(tau > 0)) {
      throw new IllegalArgumentException("tau must be > 0, got " + tau);
    }
    if (!(unsupervisedWeight >= 0) || !(supervisedWeight >= 0)) {
      throw new IllegalArgumentException("contrastive weights must be >= 0, got wU "
          + unsupervisedWeight + ", wS " + supervisedWeight);
    }
    this.tau = tau;
    this.unsupervisedWeight = unsupervisedWeight;
    this.supervisedWeight = supervisedWeight;
  }

  /**
   * One bank, one batch.
   *
   * @param z [B, H] normalised anchors with gradient
   * @param batchIndex global index of each batch row
   * @param batchLabels label of each batch row, or null (regression: no supervised term)
   * @param bankSlices [B, R, H] the batch rows' own bank slices (constants)
   * @param extras [E·R, H] extra negatives (constants), or null for none
   * @param extraIndex global index of each extra column
   * @param extraLabels label of each extra column; required when batchLabels is given
   */
  public Result compute(NDArray z, long[] batchIndex, int[] batchLabels, NDArray bankSlices,
      NDArray extras, long[] extraIndex, int[] extraLabels) {
    return compute(z, z.stopGradient(), batchIndex, batchLabels, bankSlices, extras, extraIndex,
        extraLabels);
  }

  /**
   * Same, with the in-batch detached copies given separately: lets a finite-difference check move
   * the anchor while holding the candidates still, which is what "gradient only through z" means.
   */
  Result compute(NDArray z, NDArray detachedCopy, long[] batchIndex, int[] batchLabels,
      NDArray bankSlices, NDArray extras, long[] extraIndex, int[] extraLabels) {
    Shape zShape = z.getShape();
    if (zShape.dimension() != 2) {
      throw new IllegalArgumentException("anchor z must be [B, H], got " + zShape);
    }
    int b = (int) zShape.get(0);
    int h = (int) zShape.get(1);
    if (batchIndex.length != b) {
      throw new IllegalArgumentException(
          "batchIndex has " + batchIndex.length + " entries but z has " + b + " rows");
    }
    if (batchLabels != null && batchLabels.length != b) {
      throw new IllegalArgumentException(
          "batchLabels has " + batchLabels.length + " entries but z has " + b + " rows");
    }
    Shape gShape = bankSlices.getShape();
    if (gShape.dimension() != 3 || gShape.get(0) != b || gShape.get(2) != h || gShape.get(1) < 1) {
      throw new IllegalArgumentException(
          "bankSlices must be [B, R, H] = [" + b + ", R>=1, " + h + "], got " + gShape);
    }
    int r = (int) gShape.get(1);
    int e = extras == null ? 0 : (int) extras.getShape().get(0);
    if (extras != null) {
      if (extras.getShape().dimension() != 2 || extras.getShape().get(1) != h) {
        throw new IllegalArgumentException("extras must be [E·R, " + h + "], got " + extras.getShape());
      }
      if (extraIndex == null || extraIndex.length != e) {
        throw new IllegalArgumentException("extraIndex has "
            + (extraIndex == null ? "no" : extraIndex.length) + " entries but extras has " + e + " rows");
      }
    }
    boolean supervised = batchLabels != null && supervisedWeight > 0;
    if (supervised && e > 0 && (extraLabels == null || extraLabels.length != e)) {
      throw new IllegalArgumentException("extraLabels has " + (extraLabels == null ? "no" : extraLabels.length)
          + " entries but extras has " + e + " rows; the supervised term needs every candidate's label");
    }

    int group = r + 1;
    int m = b * group + e;
    long[] columnIndex = new long[m];
    int[] columnLabel = new int[m];
    for (int i = 0; i < b; i++) {
      for (int s = 0; s < group; s++) {
        columnIndex[i * group + s] = batchIndex[i];
        columnLabel[i * group + s] = batchLabels == null ? 0 : batchLabels[i];
      }
    }
    for (int j = 0; j < e; j++) {
      columnIndex[b * group + j] = extraIndex[j];
      columnLabel[b * group + j] = supervised ? extraLabels[j] : 0;
    }

    DataType type = z.getDataType();
    NDManager manager = z.getManager();
    NDArray block = detachedCopy.stopGradient().expandDims(1)
        .concat(bankSlices.stopGradient().toType(type, false), 1)
        .reshape(b * group, h);
    NDArray candidates = e == 0 ? block : block.concat(extras.stopGradient().toType(type, false), 0);

    double[] keep = new double[b * m];
    double[] fill = new double[b * m];
    java.util.Arrays.fill(keep, 1.0);
    for (int i = 0; i < b; i++) {
      keep[i * m + i * group] = 0.0;
      fill[i * m + i * group] = SELF_SCORE;
    }
    Shape scoreShape = new Shape(b, m);
    NDArray scores = z.matMul(candidates.transpose()).div(NDArrays.scalar(manager, tau, z.getDataType()));
    NDArray logP = scores.mul(manager.create(keep, scoreShape).toType(type, false))
        .add(manager.create(fill, scoreShape).toType(type, false))
        .logSoftmax(1);

    Term unsup = term(logP, b, m, group, unsupervisedWeight, (i, j) -> columnIndex[j] == batchIndex[i]);
    Term sup = supervised
        ? term(logP, b, m, group, supervisedWeight, (i, j) -> columnLabel[j] == batchLabels[i])
        : new Term(manager.zeros(new Shape(), type), 0);
    return new Result(unsup.loss, sup.loss, scalar(unsup.loss), scalar(sup.loss),
        unsup.positives, sup.positives, m);
  }

  private interface Positive {
    boolean test(int anchor, int column);
  }

  private record Term(NDArray loss, int positives) {}

  private static Term term(NDArray logP, int b, int m, int group, float weight, Positive positive) {
    int[] count = new int[b];
    int total = 0;
    for (int i = 0; i < b; i++) {
      int self = i * group;
      for (int j = 0; j < m; j++) {
        if (j != self && positive.test(i, j)) {
          count[i]++;
        }
      }
      total += count[i];
    }
    NDManager manager = logP.getManager();
    if (total == 0 || weight == 0) {
      return new Term(manager.zeros(new Shape(), logP.getDataType()), total);
    }
    // Σ|P| is a count, a constant for the gradient (cap-reference 1.5); an anchor without positives
    // contributes nothing instead of the reference's 0/0.
    double[] coefficient = new double[b * m];
    for (int i = 0; i < b; i++) {
      if (count[i] == 0) {
        continue;
      }
      double c = 1.0 / ((double) count[i] * total);
      int self = i * group;
      for (int j = 0; j < m; j++) {
        if (j != self && positive.test(i, j)) {
          coefficient[i * m + j] = c;
        }
      }
    }
    NDArray weights = manager.create(coefficient, new Shape(b, m)).toType(logP.getDataType(), false);
    return new Term(logP.mul(weights).sum()
        .mul(NDArrays.scalar(logP.getManager(), -weight, logP.getDataType())), total);
  }

  private static float scalar(NDArray x) {
    return (float) x.toType(DataType.FLOAT64, false).getDouble();
  }

  /**
   * Both terms of one call.
   *
   * @param unsup scalar, already multiplied by wU
   * @param sup scalar, already multiplied by wS; 0 when there are no labels
   * @param unsupPositives Σ_b |P_b| of the unsupervised term
   * @param supPositives Σ_b |P_b| of the supervised term
   * @param columns number of candidates M
   */
  public record Result(NDArray unsup, NDArray sup, float unsupValue, float supValue,
      int unsupPositives, int supPositives, int columns) {

    public NDArray total() {
      return unsup.add(sup);
    }

    public float totalValue() {
      return unsupValue + supValue;
    }
  }
}
