package io.capprune.core.bank;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.tensor.NDArrays;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link RepresentationBank} copied once onto the device that computes the loss: vectors in half
 * precision as [n, R, H] per bank, global indices and labels as int64, teacher logits as float32. A
 * step then gathers its rows and draws its extra negatives with index tensors on the device: no
 * host round trip, no Java loop over rows or candidates.
 *
 * <p>A worker keeps one per shard and bank version ({@link #holds}); SnC adds a slice once per
 * epoch, which makes a new bank object and so one new upload per epoch.
 */
public final class DeviceBank implements AutoCloseable {
  private final RepresentationBank source;
  private final int snapSlices;
  private final NDManager manager;
  private final NDArray globalIndex;
  private final NDArray labels;
  private final NDArray teacherLogits;
  private final Map<Kind, NDArray> vectors = new EnumMap<>(Kind.class);

  private DeviceBank(RepresentationBank source, NDManager manager) {
    this.source = source;
    this.snapSlices = source.slices(Kind.SNAP);
    this.manager = manager;
    int n = source.size();
    this.globalIndex = NDArrays.owned(manager.create(source.globalIndexArray()));
    int[] l = source.labelArray();
    this.labels = l == null ? null : NDArrays.owned(manager.create(NDArrays.toLongs(l)));
    float[] t = source.teacherLogitArray();
    this.teacherLogits =
        t == null ? null : NDArrays.owned(manager.create(t, new Shape(n, source.numClasses())));
    for (Kind kind : Kind.values()) {
      List<short[]> parts = source.halfSlices(kind);
      if (parts.isEmpty()) {
        continue;
      }
      int h = source.hiddenSize();
      ByteBuffer buffer =
          ByteBuffer.allocateDirect(2 * parts.size() * n * h).order(ByteOrder.nativeOrder());
      java.nio.ShortBuffer shorts = buffer.asShortBuffer();
      for (short[] part : parts) {
        shorts.put(part);
      }
      NDArray rnh =
          NDArrays.owned(manager.create(buffer, new Shape(parts.size(), n, h), DataType.FLOAT16));
      vectors.put(kind, rnh.transpose(1, 0, 2));
    }
  }

  /** Copies {@code bank} onto the device of {@code parent}, into a manager of its own. */
  public static DeviceBank upload(NDManager parent, RepresentationBank bank) {
    NDManager m = parent.newSubManager();
    try {
      return new DeviceBank(bank, m);
    } catch (RuntimeException e) {
      m.close();
      throw e;
    }
  }

  /** Whether this is the device copy of {@code bank} as it is now (same object, same slices). */
  public boolean holds(RepresentationBank bank) {
    return bank == source && bank.slices(Kind.SNAP) == snapSlices;
  }

  public RepresentationBank source() {
    return source;
  }

  public int slices(Kind kind) {
    return source.slices(kind);
  }

  public boolean hasLabels() {
    return labels != null;
  }

  public boolean hasTeacherLogits() {
    return teacherLogits != null;
  }

  public int numClasses() {
    return source.numClasses();
  }

  /** [B] int64 global indices of the given local rows ([B] int64 on this device). */
  public NDArray globalIndex(NDArray rows) {
    return onto(rows, globalIndex.get(rows));
  }

  /** [B] int64 labels of the rows, or null (regression). */
  public NDArray labels(NDArray rows) {
    return labels == null ? null : onto(rows, labels.get(rows));
  }

  /** [B, C] float32 teacher logits of the rows. */
  public NDArray teacherLogits(NDArray rows) {
    if (teacherLogits == null) {
      throw new IllegalStateException("this bank holds no teacher logits");
    }
    return onto(rows, teacherLogits.get(rows));
  }

  /** [B, R, H] half-precision slices of the rows (the reference's bank[idx]). */
  public NDArray gather(Kind kind, NDArray rows) {
    NDArray v = vectors.get(kind);
    if (v == null) {
      throw new IllegalStateException(kind + " bank is empty");
    }
    return onto(rows, v.get(rows));
  }

  /**
   * The extra negatives of one contrastive call (docs/cap-math.md §1.3 step 3), drawn on the device
   * with the engine's generator: E = min(floor(extraExamples / R), N) distinct rows, each with all
   * its R slices.
   *
   * <p>The rows come from this shard only but have the distribution of the reference's draw from
   * the whole training set of N rows: the batch rows among them are those of a uniform draw of E
   * from N (so their number follows the hypergeometric law), and the rest are uniform over the
   * shard's non-batch rows. A plain draw from the shard would re-draw batch rows as their own
   * extras E/n instead of E/N of the time, which measurably shifts the loss
   * (ShardLocalSamplingTest). Where the shard has fewer non-batch rows than the draw needs, the
   * missing columns are padding ({@link Negatives#valid()} false) and take no part.
   *
   * @param batchRows [B] int64 local rows of the batch, distinct, on this device
   * @return null when E is 0
   */
  public Negatives sampleNegatives(Kind kind, int extraExamples, NDArray batchRows) {
    int r = slices(kind);
    if (r == 0) {
      throw new IllegalStateException(kind + " bank is empty: no negatives to draw");
    }
    if (extraExamples < 0) {
      throw new IllegalArgumentException("extraExamples must be >= 0, got " + extraExamples);
    }
    int n = source.size();
    long bigN = source.trainingSetSize();
    int e = (int) Math.min(extraExamples / r, bigN);
    int columns = Math.min(e, n);
    if (columns == 0) {
      return null;
    }
    int b = (int) batchRows.getShape().size();
    NDManager m = batchRows.getManager();
    // Which batch rows a draw of E from N would include: the first B of N uniform keys stand for
    // the batch, and a row is drawn when its key is among the E smallest.
    NDArray chosen;
    if (e >= bigN) {
      chosen = m.ones(new Shape(b), DataType.BOOLEAN);
    } else {
      NDArray all = m.randomUniform(0f, 1f, new Shape(bigN), DataType.FLOAT32);
      NDArray threshold = all.topK(e, 0, false, false).get(0).max();
      chosen = all.get("0:" + b).lte(threshold);
    }
    // Shard rows by key: drawn batch rows first (-1), then the non-batch rows in random order, the
    // other batch rows last (2, marked invalid if the draw reaches them).
    NDArray keys = m.randomUniform(0f, 1f, new Shape(n), DataType.FLOAT32);
    NDArray batchKeys =
        NDArrays.where(
            chosen,
            NDArrays.scalar(m, -1, DataType.FLOAT32),
            NDArrays.scalar(m, 2, DataType.FLOAT32));
    keys = keys.scatter(batchRows, batchKeys, 0);
    NDList smallest = keys.topK(columns, 0, false, true);
    NDArray rows = smallest.get(1);
    // the draw reaches the undrawn batch rows only when the shard has fewer than E non-batch rows
    NDArray valid =
        columns <= n - b ? null : smallest.get(0).lt(NDArrays.scalar(m, 1.5, DataType.FLOAT32));
    NDArray v =
        onto(rows, vectors.get(kind).get(rows)).reshape(columns * (long) r, source.hiddenSize());
    return new Negatives(
        v,
        perSlice(globalIndex(rows), r),
        labels == null ? null : perSlice(labels(rows), r),
        valid == null ? null : perSlice(valid, r));
  }

  /**
   * An op on the bank's arrays attaches its result to the bank's manager, which lives for an epoch:
   * move it to the step's manager (that of the row index), which is closed with the step.
   */
  private static NDArray onto(NDArray rows, NDArray result) {
    result.attach(rows.getManager());
    return result;
  }

  /** [E] -> [E·R]: each row's value for each of its R slices. */
  private static NDArray perSlice(NDArray x, int r) {
    long e = x.getShape().size();
    return r == 1 ? x : x.reshape(e, 1).broadcast(new Shape(e, r)).reshape(e * r);
  }

  @Override
  public void close() {
    manager.close();
  }
}
