package io.capprune.core.bank;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.tensor.HalfPrecision;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The CAP representation banks of one shard (docs/cap-math.md §1.2-1.3, docs/decisions.md decision
 * 6): for each of the shard's n training rows its global index, its label, the frozen teacher's
 * logits and the L2-normalised representations under the PRE model (1 slice), the fine-tuned
 * teacher (FINE, 1 slice) and the student snapshots taken so far (SNAP, R slices, grows by
 * appending).
 *
 * <p>Vectors are stored as IEEE half precision bits: the reference keeps N·(2+R)·768 float32 on the
 * host (12 GB for QQP with 9 snapshots); halving that matters when the bank lives in a cached Spark
 * partition, and unit vectors lose nothing the loss can see. Not thread-safe for {@link #addSlice};
 * reads may be concurrent. A worker computes with a {@link DeviceBank}, this bank's copy on its
 * device, where the extra negatives are drawn.
 */
public final class RepresentationBank implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Which frozen model a slice came from; PrC uses PRE, FiC uses FINE, SnC uses SNAP. */
  public enum Kind {
    PRE,
    FINE,
    SNAP
  }

  /** Largest finite half; bank vectors are unit vectors, so anything beyond is a caller bug. */
  private static final float MAX_HALF = 65504f;

  private final long[] globalIndex;
  private final int[] labels;
  private final float[] teacherLogits;
  private final int numClasses;
  private final int hiddenSize;
  private final long trainingSetSize;
  private short[] pre;
  private short[] fine;
  private final ArrayList<short[]> snap = new ArrayList<>();

  /**
   * @param globalIndex position of each local row in the unshuffled training set; distinct
   * @param labels class label per row, or null for regression (then there is no supervised term)
   * @param teacherLogits row-major n × numClasses, or null when distillation is off
   * @param numClasses classifier outputs (1 for regression); ignored when teacherLogits is null
   * @param hiddenSize representation width H
   */
  public RepresentationBank(
      long[] globalIndex, int[] labels, float[] teacherLogits, int numClasses, int hiddenSize) {
    this(
        globalIndex,
        labels,
        teacherLogits,
        numClasses,
        hiddenSize,
        globalIndex == null ? 0 : globalIndex.length);
  }

  /**
   * A shard of a larger training set.
   *
   * @param trainingSetSize N, the rows of all shards together; the batch-aware negative draw uses
   *     it to include batch rows as often as a draw from the whole training set would
   */
  public RepresentationBank(
      long[] globalIndex,
      int[] labels,
      float[] teacherLogits,
      int numClasses,
      int hiddenSize,
      long trainingSetSize) {
    if (globalIndex == null) {
      throw new IllegalArgumentException("globalIndex must not be null");
    }
    int n = globalIndex.length;
    if (hiddenSize <= 0) {
      throw new IllegalArgumentException("hiddenSize must be positive, got " + hiddenSize);
    }
    // one slice must fit one Java array
    sliceLength(n, hiddenSize);
    long[] sorted = globalIndex.clone();
    Arrays.sort(sorted);
    for (int i = 0; i < n; i++) {
      if (sorted[i] < 0) {
        throw new IllegalArgumentException("negative global index " + sorted[i]);
      }
      if (i > 0 && sorted[i] == sorted[i - 1]) {
        throw new IllegalArgumentException(
            "global index "
                + sorted[i]
                + " appears twice; each training row must be in one bank row");
      }
    }
    if (labels != null) {
      if (labels.length != n) {
        throw new IllegalArgumentException(
            "labels has " + labels.length + " entries but globalIndex has " + n);
      }
      for (int i = 0; i < n; i++) {
        if (labels[i] < 0) {
          throw new IllegalArgumentException(
              "negative label "
                  + labels[i]
                  + " at row "
                  + i
                  + " (global index "
                  + globalIndex[i]
                  + ")");
        }
      }
    }
    if (teacherLogits != null) {
      if (numClasses <= 0) {
        throw new IllegalArgumentException("numClasses must be positive, got " + numClasses);
      }
      if ((long) n * numClasses != teacherLogits.length) {
        throw new IllegalArgumentException(
            "teacherLogits has "
                + teacherLogits.length
                + " values but n × numClasses = "
                + n
                + " × "
                + numClasses
                + " = "
                + (long) n * numClasses);
      }
    }
    this.globalIndex = globalIndex.clone();
    this.labels = labels == null ? null : labels.clone();
    this.teacherLogits = teacherLogits == null ? null : teacherLogits.clone();
    this.numClasses = teacherLogits == null ? 0 : numClasses;
    this.hiddenSize = hiddenSize;
    if (trainingSetSize < n) {
      throw new IllegalArgumentException(
          "trainingSetSize " + trainingSetSize + " is smaller than this shard's " + n + " rows");
    }
    this.trainingSetSize = trainingSetSize;
  }

  /**
   * A bank holding the same rows and slices (shared, never modified: slices are replaced, not
   * written into) to which a new slice can be added without changing this one. Spark keeps the
   * previous version of a cached shard as the lineage of the next.
   */
  public RepresentationBank copy() {
    RepresentationBank c = new RepresentationBank(this);
    return c;
  }

  private RepresentationBank(RepresentationBank other) {
    this.globalIndex = other.globalIndex;
    this.labels = other.labels;
    this.teacherLogits = other.teacherLogits;
    this.numClasses = other.numClasses;
    this.hiddenSize = other.hiddenSize;
    this.trainingSetSize = other.trainingSetSize;
    this.pre = other.pre;
    this.fine = other.fine;
    this.snap.addAll(other.snap);
  }

  public int size() {
    return globalIndex.length;
  }

  /** N of the whole training set (this shard's size when the bank is not a shard). */
  public long trainingSetSize() {
    return trainingSetSize;
  }

  public int hiddenSize() {
    return hiddenSize;
  }

  /** Classifier width of the stored teacher logits, 0 when there are none. */
  public int numClasses() {
    return numClasses;
  }

  public boolean hasLabels() {
    return labels != null;
  }

  public boolean hasTeacherLogits() {
    return teacherLogits != null;
  }

  /** R of the bank: 0 or 1 for PRE and FINE, the number of snapshots for SNAP. */
  public int slices(Kind kind) {
    return switch (kind) {
      case PRE -> pre == null ? 0 : 1;
      case FINE -> fine == null ? 0 : 1;
      case SNAP -> snap.size();
    };
  }

  /**
   * Stores one slice (n × H floats, row-major in local row order) in half precision. PRE and FINE
   * take exactly one slice; SNAP appends.
   */
  public void addSlice(Kind kind, float[] vectors) {
    String name = kind == Kind.SNAP ? "SNAP slice " + snap.size() : kind + " slice";
    if (kind != Kind.SNAP && slices(kind) > 0) {
      throw new IllegalStateException(name + " already present; only SNAP grows");
    }
    int length = sliceLength(size(), hiddenSize);
    if (vectors == null || vectors.length != length) {
      throw new IllegalArgumentException(
          name
              + " has "
              + (vectors == null ? "no" : vectors.length)
              + " values, expected n × H = "
              + size()
              + " × "
              + hiddenSize
              + " = "
              + length);
    }
    short[] encoded = new short[length];
    for (int i = 0; i < length; i++) {
      float v = vectors[i];
      if (!(Math.abs(v) <= MAX_HALF)) {
        int row = i / hiddenSize;
        throw new IllegalArgumentException(
            name
                + ": row "
                + row
                + " (global index "
                + globalIndex[row]
                + ") component "
                + (i % hiddenSize)
                + " is "
                + v
                + ", not a finite half-precision value");
      }
      encoded[i] = HalfPrecision.floatToF16(v);
    }
    switch (kind) {
      case PRE -> pre = encoded;
      case FINE -> fine = encoded;
      case SNAP -> snap.add(encoded);
    }
  }

  public long globalIndex(int row) {
    return globalIndex[checkRow(row)];
  }

  public long[] globalIndices(int[] rows) {
    long[] out = new long[rows.length];
    for (int i = 0; i < rows.length; i++) {
      out[i] = globalIndex[checkRow(rows[i])];
    }
    return out;
  }

  /** Labels of the given local rows, or null when the bank has none (regression). */
  public int[] labels(int[] rows) {
    if (labels == null) {
      return null;
    }
    int[] out = new int[rows.length];
    for (int i = 0; i < rows.length; i++) {
      out[i] = labels[checkRow(rows[i])];
    }
    return out;
  }

  /** Teacher logits of the given rows, rows.length × numClasses row-major. */
  public float[] teacherLogits(int[] rows) {
    if (teacherLogits == null) {
      throw new IllegalStateException("this bank holds no teacher logits");
    }
    float[] out = new float[rows.length * numClasses];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(
          teacherLogits, checkRow(rows[i]) * numClasses, out, i * numClasses, numClasses);
    }
    return out;
  }

  /** The R slices of each given row, rows.length × R × H row-major (the reference's bank[idx]). */
  public float[] gather(Kind kind, int[] rows) {
    List<short[]> parts = parts(kind);
    int r = parts.size();
    float[] out = new float[rows.length * r * hiddenSize];
    int o = 0;
    for (int row : rows) {
      int from = checkRow(row) * hiddenSize;
      for (short[] part : parts) {
        for (int h = 0; h < hiddenSize; h++) {
          out[o++] = HalfPrecision.f16ToFloat(part[from + h]);
        }
      }
    }
    return out;
  }

  /** {@link #gather(Kind, int[])} as a float32 NDArray [B, R, H] owned by manager. */
  public NDArray gather(NDManager manager, Kind kind, int[] rows) {
    return manager.create(gather(kind, rows), new Shape(rows.length, slices(kind), hiddenSize));
  }

  /** Heap bytes held by vectors, indices, labels and logits (what caching this bank costs). */
  public long memoryBytes() {
    long vectors =
        (long) (slices(Kind.PRE) + slices(Kind.FINE) + slices(Kind.SNAP))
            * size()
            * hiddenSize
            * Short.BYTES;
    long rest =
        (long) size() * Long.BYTES
            + (labels == null ? 0 : (long) size() * Integer.BYTES)
            + (teacherLogits == null ? 0 : (long) teacherLogits.length * Float.BYTES);
    return vectors + rest;
  }

  private List<short[]> parts(Kind kind) {
    return switch (kind) {
      case PRE -> pre == null ? List.of() : List.of(pre);
      case FINE -> fine == null ? List.of() : List.of(fine);
      case SNAP -> snap;
    };
  }

  private int checkRow(int row) {
    if (row < 0 || row >= globalIndex.length) {
      throw new IndexOutOfBoundsException(
          "local row " + row + " outside bank of " + globalIndex.length + " rows");
    }
    return row;
  }

  private static int sliceLength(int n, int hiddenSize) {
    long length = (long) n * hiddenSize;
    if (length > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "a slice of " + n + " rows × " + hiddenSize + " does not fit one array; use more shards");
    }
    return (int) length;
  }

  // Raw views for DeviceBank (same package): never modified by it.

  long[] globalIndexArray() {
    return globalIndex;
  }

  int[] labelArray() {
    return labels;
  }

  float[] teacherLogitArray() {
    return teacherLogits;
  }

  List<short[]> halfSlices(Kind kind) {
    return parts(kind);
  }
}
