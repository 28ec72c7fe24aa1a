package io.capprune.core.prune;

import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Kept and pruned weights per prunable matrix and over all of them. {@link
 * #remainingEncoderFraction} is the figure the reference's {@code counts_parameters.py} reports
 * (docs/cap-math.md §6): encoder biases and LayerNorm parameters count as kept in numerator and
 * denominator, embeddings, pooler and classifier are not counted.
 *
 * @param encoderOtherParams encoder parameters that are not prunable matrices (biases, LayerNorms)
 */
public record SparsityReport(List<Entry> matrices, long encoderOtherParams)
    implements java.io.Serializable {

  /** One prunable matrix. */
  public record Entry(String name, long numel, long kept) implements java.io.Serializable {
    public double sparsity() {
      return numel == 0 ? 0 : 1.0 - (double) kept / numel;
    }
  }

  public SparsityReport {
    matrices = List.copyOf(matrices);
  }

  /** Counts non-zeros of the masks; {@code weights} supplies the encoder's other parameters. */
  public static SparsityReport of(Map<String, HostTensor> masks, Map<String, HostTensor> weights) {
    List<Entry> entries = new ArrayList<>();
    for (Map.Entry<String, HostTensor> e : masks.entrySet()) {
      entries.add(
          new Entry(e.getKey(), e.getValue().numel(), MaskComputer.countOnes(e.getValue().data())));
    }
    return new SparsityReport(entries, encoderOtherParams(weights));
  }

  static long encoderOtherParams(Map<String, HostTensor> weights) {
    long other = 0;
    for (Map.Entry<String, HostTensor> e : weights.entrySet()) {
      if (ParameterNames.isEncoder(e.getKey()) && !ParameterNames.isPrunable(e.getKey())) {
        other += e.getValue().numel();
      }
    }
    return other;
  }

  public long totalNumel() {
    return matrices.stream().mapToLong(Entry::numel).sum();
  }

  public long totalKept() {
    return matrices.stream().mapToLong(Entry::kept).sum();
  }

  /** Fraction of prunable weights that are pruned. */
  public double sparsity() {
    long n = totalNumel();
    return n == 0 ? 0 : 1.0 - (double) totalKept() / n;
  }

  /** The reference's "remaining" figure: (kept + encoder other) / (prunable + encoder other). */
  public double remainingEncoderFraction() {
    long denominator = totalNumel() + encoderOtherParams;
    return denominator == 0 ? 1 : (double) (totalKept() + encoderOtherParams) / denominator;
  }
}
