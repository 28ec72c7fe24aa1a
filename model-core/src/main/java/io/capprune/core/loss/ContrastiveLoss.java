package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.Negatives;
import io.capprune.core.tensor.NDArrays;

/**
 * The one routine behind PrC, SnC and FiC ({@code calculate_contrastive_loss}, docs/cap-math.md
 * §1.3-1.5). The three modules differ only in the bank they pass.
 *
 * <p>Candidates, in the reference's order: for each batch row b the group [z_b detached, G[b,0],
 * ..., G[b,R−1]], then the extra negatives. Scores are z·c/τ; the anchor's own detached copy is set
 * to −1e6 before the log-softmax. For a positive set P (same global index = unsupervised, same
 * label = supervised, self excluded) the loss is −w · Σ_b (1/|P_b|) Σ_{j∈P_b} log p_bj / Σ_b |P_b|:
 * a per-anchor mean divided by the total number of positive pairs, not by B. That quirk scales SnC
 * by 1/R and the supervised term by ≈1/|P|; the published weights (0.1, 10) only make sense with
 * it, so it is kept.
 *
 * <p>Everything is tensor math on the anchors' device: candidate indices, labels and validity
 * arrive as tensors, the self, positive and validity masks are built there, and nothing is read
 * back to the host (the values in {@link Result} are read only when asked for). On a GPU a step
 * therefore never waits for the loss.
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
      throw new IllegalArgumentException(
          "contrastive weights must be >= 0, got wU "
              + unsupervisedWeight
              + ", wS "
              + supervisedWeight);
    }
    this.tau = tau;
    this.unsupervisedWeight = unsupervisedWeight;
    this.supervisedWeight = supervisedWeight;
  }

  /**
   * One bank, one batch, from host arrays: uploads them and calls {@link #compute(NDArray, NDArray,
   * NDArray, NDArray, NDArray, Negatives)}.
   *
   * @param z [B, H] normalised anchors with gradient
   * @param batchIndex global index of each batch row
   * @param batchLabels label of each batch row, or null (regression: no supervised term)
   * @param bankSlices [B, R, H] the batch rows' own bank slices (constants)
   * @param extras [E·R, H] extra negatives (constants), or null for none
   * @param extraIndex global index of each extra column
   * @param extraLabels label of each extra column; required when batchLabels is given
   */
  public Result compute(
      NDArray z,
      long[] batchIndex,
      int[] batchLabels,
      NDArray bankSlices,
      NDArray extras,
      long[] extraIndex,
      int[] extraLabels) {
    return compute(
        z, z.stopGradient(), batchIndex, batchLabels, bankSlices, extras, extraIndex, extraLabels);
  }

  /**
   * Same, with the in-batch detached copies given separately: lets a finite-difference check move
   * the anchor while holding the candidates still, which is what "gradient only through z" means.
   */
  Result compute(
      NDArray z,
      NDArray detachedCopy,
      long[] batchIndex,
      int[] batchLabels,
      NDArray bankSlices,
      NDArray extras,
      long[] extraIndex,
      int[] extraLabels) {
    int b = (int) z.getShape().get(0);
    if (batchIndex.length != b) {
      throw new IllegalArgumentException(
          "batchIndex has " + batchIndex.length + " entries but z has " + b + " rows");
    }
    if (batchLabels != null && batchLabels.length != b) {
      throw new IllegalArgumentException(
          "batchLabels has " + batchLabels.length + " entries but z has " + b + " rows");
    }
    int e = extras == null ? 0 : (int) extras.getShape().get(0);
    if (extras != null && (extraIndex == null || extraIndex.length != e)) {
      throw new IllegalArgumentException(
          "extraIndex has "
              + (extraIndex == null ? "no" : extraIndex.length)
              + " entries but extras has "
              + e
              + " rows");
    }
    if (batchLabels != null
        && supervisedWeight > 0
        && e > 0
        && (extraLabels == null || extraLabels.length != e)) {
      throw new IllegalArgumentException(
          "extraLabels has "
              + (extraLabels == null ? "no" : extraLabels.length)
              + " entries but extras has "
              + e
              + " rows; the supervised term needs every candidate's label");
    }
    NDManager m = z.getManager();
    Negatives candidates =
        extras == null
            ? null
            : new Negatives(
                extras,
                m.create(extraIndex),
                extraLabels == null ? null : m.create(NDArrays.toLongs(extraLabels)),
                null);
    return compute(
        z,
        detachedCopy,
        m.create(batchIndex),
        batchLabels == null ? null : m.create(NDArrays.toLongs(batchLabels)),
        bankSlices,
        candidates);
  }

  /**
   * One bank, one batch, on the device.
   *
   * @param z [B, H] normalised anchors with gradient
   * @param detachedCopy [B, H] the in-batch candidates (z detached, unless a test holds them still)
   * @param batchIndex [B] int64 global index of each batch row
   * @param batchLabels [B] int64 label of each batch row, or null (regression: no supervised term)
   * @param bankSlices [B, R, H] the batch rows' own bank slices (constants, any float type)
   * @param extras the extra negatives, or null for none
   */
  public Result compute(
      NDArray z,
      NDArray detachedCopy,
      NDArray batchIndex,
      NDArray batchLabels,
      NDArray bankSlices,
      Negatives extras) {
    return compute(new Anchors(z, detachedCopy, batchIndex, batchLabels), bankSlices, extras);
  }

  /**
   * The anchors of one micro-batch and what every bank's call shares: their detached copies, global
   * indices and labels, and the self masks and in-batch column values of each candidate layout. One
   * per micro-batch; the banks then spend their operations on what differs between them (each
   * operation is a JNI call and a kernel launch, which a small model's step would otherwise be made
   * of).
   */
  public static final class Anchors {
    final NDArray z;
    final NDArray detached;
    final NDArray index;
    final NDArray labels;
    private final java.util.Map<java.util.List<Integer>, NDArray[]> layouts =
        new java.util.HashMap<>();

    /**
     * @param z [B, H] normalised anchors with gradient
     * @param detachedCopy [B, H] the in-batch candidates (z detached, unless a test holds them
     *     still)
     * @param batchIndex [B] int64 global index of each batch row
     * @param batchLabels [B] int64 label of each batch row, or null (regression)
     */
    public Anchors(NDArray z, NDArray detachedCopy, NDArray batchIndex, NDArray batchLabels) {
      if (z.getShape().dimension() != 2) {
        throw new IllegalArgumentException("anchor z must be [B, H], got " + z.getShape());
      }
      long b = z.getShape().get(0);
      if (batchIndex.getShape().size() != b) {
        throw new IllegalArgumentException(
            "batchIndex has " + batchIndex.getShape().size() + " entries but z has " + b + " rows");
      }
      this.z = z;
      this.detached = detachedCopy.stopGradient();
      this.index = batchIndex.reshape(b, 1);
      this.labels = batchLabels == null ? null : batchLabels.reshape(b, 1);
    }

    /**
     * For B anchors, groups of {@code group} columns and {@code e} extras: [self mask [B, M], its
     * complement, the fill value broadcast to [B, M], in-batch column indices [B·group], in-batch
     * column labels or null, tau].
     */
    NDArray[] layout(int group, int e, float tau) {
      return layouts.computeIfAbsent(
          java.util.List.of(group, e),
          k -> {
            NDManager manager = z.getManager();
            DataType type = z.getDataType();
            int b = (int) z.getShape().get(0);
            int m = b * group + e;
            NDArray column = manager.arange(0, m, 1, DataType.INT64).reshape(1, m);
            NDArray selfColumn = manager.arange(0, b * group, group, DataType.INT64).reshape(b, 1);
            NDArray self = column.eq(selfColumn);
            Shape bm = new Shape(b, m);
            return new NDArray[] {
              self,
              self.logicalNot(),
              NDArrays.scalar(manager, SELF_SCORE, type).broadcast(bm),
              block(index, group),
              labels == null ? null : block(labels, group),
              NDArrays.scalar(manager, tau, type)
            };
          });
    }

    private static NDArray block(NDArray column, int group) {
      long b = column.getShape().get(0);
      return column.broadcast(new Shape(b, group)).reshape(b * group);
    }
  }

  /** One bank, one batch, on the device, for anchors that other banks' calls may share. */
  public Result compute(Anchors anchors, NDArray bankSlices, Negatives extras) {
    NDArray z = anchors.z;
    int b = (int) z.getShape().get(0);
    int h = (int) z.getShape().get(1);
    Shape gShape = bankSlices.getShape();
    if (gShape.dimension() != 3 || gShape.get(0) != b || gShape.get(2) != h || gShape.get(1) < 1) {
      throw new IllegalArgumentException(
          "bankSlices must be [B, R, H] = [" + b + ", R>=1, " + h + "], got " + gShape);
    }
    int r = (int) gShape.get(1);
    int e = extras == null ? 0 : (int) extras.vectors().getShape().get(0);
    if (extras != null) {
      if (extras.vectors().getShape().dimension() != 2 || extras.vectors().getShape().get(1) != h) {
        throw new IllegalArgumentException(
            "extras must be [E·R, " + h + "], got " + extras.vectors().getShape());
      }
      if (extras.index().getShape().size() != e) {
        throw new IllegalArgumentException(
            "extraIndex has "
                + extras.index().getShape().size()
                + " entries but extras has "
                + e
                + " rows");
      }
    }
    boolean supervised = anchors.labels != null && supervisedWeight > 0;
    if (supervised && e > 0 && extras.labels() == null) {
      throw new IllegalArgumentException(
          "extraLabels has no entries but extras has "
              + e
              + " rows; the supervised term needs every candidate's label");
    }

    DataType type = z.getDataType();
    NDManager manager = z.getManager();
    int group = r + 1;
    int m = b * group + e;
    NDArray[] layout = anchors.layout(group, e, tau);
    NDArray block =
        anchors
            .detached
            .expandDims(1)
            .concat(bankSlices.stopGradient().toType(type, false), 1)
            .reshape(b * group, h);
    NDArray candidates =
        e == 0 ? block : block.concat(extras.vectors().stopGradient().toType(type, false), 0);

    // Columns that take no part: each anchor's own detached copy, and padding extras.
    NDArray excluded = layout[0];
    NDArray included = layout[1];
    if (e > 0 && extras.valid() != null) {
      NDArray invalid =
          manager
              .zeros(new Shape(b * group), DataType.BOOLEAN)
              .concat(extras.valid().logicalNot(), 0)
              .reshape(1, m);
      excluded = excluded.logicalOr(invalid);
      included = excluded.logicalNot();
    }
    NDArray scores = z.matMul(candidates.transpose()).div(layout[5]);
    NDArray logP = NDArrays.where(excluded, layout[2], scores).logSoftmax(1);

    NDArray columnIndex = columns(layout[3], e == 0 ? null : extras.index());
    Term unsup = term(logP, columnIndex.eq(anchors.index).logicalAnd(included), unsupervisedWeight);
    Term sup =
        supervised
            ? term(
                logP,
                columns(layout[4], e == 0 ? null : extras.labels())
                    .eq(anchors.labels)
                    .logicalAnd(included),
                supervisedWeight)
            : new Term(manager.zeros(new Shape(), type), manager.zeros(new Shape(), type));
    return new Result(unsup.loss, sup.loss, unsup.positives, sup.positives, m);
  }

  /** [1, M]: the in-batch columns' values, then the extras'. */
  private static NDArray columns(NDArray inBatch, NDArray extraValues) {
    NDArray all = extraValues == null ? inBatch : inBatch.concat(extraValues, 0);
    return all.reshape(1, -1);
  }

  private record Term(NDArray loss, NDArray positives) {}

  /**
   * −w · Σ_b (1/|P_b|) Σ_{j∈P_b} log p_bj / Σ_b |P_b|. Σ|P| is a count, a constant for the gradient
   * (docs/cap-math.md §1.5); an anchor without positives contributes nothing instead of the
   * reference's 0/0, and with no positives at all the term is 0.
   */
  private static Term term(NDArray logP, NDArray positive, float weight) {
    NDManager manager = logP.getManager();
    DataType type = logP.getDataType();
    NDArray p = positive.toType(type, false);
    NDArray count = p.sum(new int[] {1}, true);
    NDArray total = count.sum();
    if (weight == 0) {
      return new Term(manager.zeros(new Shape(), type), total);
    }
    // wherever p is 1, count·total >= 1; elsewhere the coefficient is 0 whatever the divisor
    NDArray coefficient = p.div(count.mul(total).maximum(NDArrays.scalar(manager, 1, type)));
    return new Term(
        logP.mul(coefficient).sum().mul(NDArrays.scalar(manager, -weight, type)), total);
  }

  private static double read(NDArray x) {
    return x.toType(DataType.FLOAT64, false).getDouble();
  }

  /**
   * Both terms of one call, as device scalars; the plain values are read (a device round trip) only
   * by the accessors that return them.
   *
   * @param unsup scalar, already multiplied by wU
   * @param sup scalar, already multiplied by wS; 0 when there are no labels
   * @param unsupCount Σ_b |P_b| of the unsupervised term (a scalar)
   * @param supCount Σ_b |P_b| of the supervised term (a scalar)
   * @param columns number of candidates M, padding columns included
   */
  public record Result(
      NDArray unsup, NDArray sup, NDArray unsupCount, NDArray supCount, int columns) {

    public NDArray total() {
      return unsup.add(sup);
    }

    public float unsupValue() {
      return (float) read(unsup);
    }

    public float supValue() {
      return (float) read(sup);
    }

    public float totalValue() {
      return unsupValue() + supValue();
    }

    public int unsupPositives() {
      return (int) Math.round(read(unsupCount));
    }

    public int supPositives() {
      return (int) Math.round(read(supCount));
    }
  }
}
