package io.capprune.spark.train;

import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.train.WorkerStep;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;

/**
 * What one partition sends back for one training step: the gradient of its share of the global
 * batch's loss (already scaled so that the partitions' buffers simply add up to the gradient of the
 * batch mean), the weighted loss terms for logging, and the number of examples. Spark's
 * treeAggregate sums these buffers: on the driver as they arrive, and from 6 partitions on (depth
 * 2) first on executors.
 *
 * <p>The zero value is empty (no arrays) so that Spark does not ship a model-sized array of zeros
 * with every task.
 *
 * <p>With {@link WirePrecision#FP16} the gradient is written as block-scaled halves ({@link
 * HalfBlocks}) when Java serialization (Spark's default, and the only serializer the job accepts:
 * {@code SparkContexts.checkSerializer}) ships the buffer, and summed in fp32 wherever buffers
 * meet; the precision travels with the buffer.
 */
public final class GradientBuffer implements Serializable {
  private static final long serialVersionUID = 1L;

  private float[] gradient;
  // the gradient in its fp16 encoding (a worker device's, or as read off the wire) until something
  // needs the floats
  private transient HalfBlocks.Encoded encoded;
  private LossTerms terms;
  private long examples;
  private double workerSeconds;
  private double workerSecondsTotal;
  private WirePrecision precision = WirePrecision.FP32;

  public static GradientBuffer empty() {
    return new GradientBuffer();
  }

  /**
   * @param workerSeconds the partition's compute time (forward, backward, gradient copy-out)
   */
  public static GradientBuffer of(
      float[] gradient, LossTerms terms, long examples, double workerSeconds) {
    return of(gradient, terms, examples, workerSeconds, WirePrecision.FP32);
  }

  /**
   * @param precision how the gradient travels when this buffer is serialised
   */
  public static GradientBuffer of(
      float[] gradient,
      LossTerms terms,
      long examples,
      double workerSeconds,
      WirePrecision precision) {
    GradientBuffer b = new GradientBuffer();
    b.precision = precision;
    b.gradient = gradient;
    b.terms = terms;
    b.examples = examples;
    b.workerSeconds = workerSeconds;
    b.workerSecondsTotal = workerSeconds;
    return b;
  }

  /**
   * A worker's result, in the precision it came off the device in: an fp16 gradient is serialised
   * as the device encoded it, without a host decode and re-encode.
   *
   * @param workerSeconds the partition's compute time (upload, forward, backward, download)
   */
  public static GradientBuffer of(WorkerStep.Result r, double workerSeconds) {
    GradientBuffer b = new GradientBuffer();
    b.precision = r.precision();
    b.gradient = r.fp32();
    b.encoded = r.fp16();
    b.terms = r.terms();
    b.examples = r.examples();
    b.workerSeconds = workerSeconds;
    b.workerSecondsTotal = workerSeconds;
    return b;
  }

  /** Decodes an encoded gradient (a device's, or one read off the wire) when floats are needed. */
  private float[] floats() {
    if (gradient == null && encoded != null) {
      gradient = new float[encoded.halves().length];
      HalfBlocks.decodeIntoParallel(encoded, gradient);
      encoded = null;
    }
    return gradient;
  }

  /** Adds {@code other} into this buffer (reusing this buffer's arrays) and returns this. */
  public GradientBuffer add(GradientBuffer other) {
    if (other.isEmpty()) {
      return this;
    }
    if (isEmpty()) {
      // a device-encoded gradient is adopted as it is (never modified in place): a partition's
      // result then travels on without a host decode and re-encode
      gradient = other.gradient == null ? null : other.gradient.clone();
      encoded = other.encoded;
      terms = other.terms;
      examples = other.examples;
      workerSeconds = other.workerSeconds;
      workerSecondsTotal = other.workerSecondsTotal;
      precision = other.precision;
      return this;
    }
    float[] g = floats();
    int otherLength =
        other.gradient != null ? other.gradient.length : other.encoded.halves().length;
    if (g.length != otherLength) {
      throw new IllegalStateException(
          "gradient buffers of different layouts: " + g.length + " vs " + otherLength);
    }
    // Summed on all cores, an encoded buffer straight from its halves: at BERT-base every buffer
    // is 85.6 M values, and this merge is where the gradients of the partitions meet
    // (docs/performance.md).
    if (other.gradient == null) {
      HalfBlocks.addTo(other.encoded, g);
    } else {
      float[] o = other.gradient;
      ParallelLoops.forEach(
          (g.length + ParallelLoops.CHUNK - 1) / ParallelLoops.CHUNK,
          c -> {
            for (int i = c * ParallelLoops.CHUNK;
                i < Math.min(g.length, (c + 1) * ParallelLoops.CHUNK);
                i++) {
              g[i] += o[i];
            }
          });
    }
    terms = terms.plus(other.terms);
    examples += other.examples;
    workerSeconds = Math.max(workerSeconds, other.workerSeconds);
    workerSecondsTotal += other.workerSecondsTotal;
    return this;
  }

  private void writeObject(ObjectOutputStream out) throws IOException {
    // No defaultWriteObject: every field is written here, the gradient in the buffer's precision.
    out.writeLong(examples);
    out.writeDouble(workerSeconds);
    out.writeDouble(workerSecondsTotal);
    out.writeObject(terms);
    out.writeObject(precision);
    if (isEmpty()) {
      out.writeByte(0);
    } else if (precision == WirePrecision.FP16) {
      out.writeByte(2);
      HalfBlocks.Encoded e = encoded != null ? encoded : HalfBlocks.encodeParallel(gradient);
      RawArrays.writeShorts(out, e.halves());
      RawArrays.writeBytes(out, e.exponents());
    } else {
      out.writeByte(1);
      RawArrays.writeFloats(out, gradient);
    }
  }

  private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
    examples = in.readLong();
    workerSeconds = in.readDouble();
    workerSecondsTotal = in.readDouble();
    terms = (LossTerms) in.readObject();
    precision = (WirePrecision) in.readObject();
    byte kind = in.readByte();
    switch (kind) {
      case 0 -> gradient = null;
      case 1 -> gradient = RawArrays.readFloats(in);
      // kept encoded: the merge adds it from its halves, without a full-size float copy
      case 2 -> encoded = new HalfBlocks.Encoded(RawArrays.readShorts(in), RawArrays.readBytes(in));
      default -> throw new IOException("gradient buffer: unknown encoding " + kind);
    }
  }

  /**
   * The gradient in its fp16 encoding when it has not been decoded (one partition's buffer, or one
   * that arrived and met no other), else null: a device update can take it up as it is.
   */
  public HalfBlocks.Encoded encodedOrNull() {
    return gradient == null ? encoded : null;
  }

  public boolean isEmpty() {
    return gradient == null && encoded == null;
  }

  public float[] gradient() {
    return floats();
  }

  /** The partitions' loss terms added up: the global batch's mean terms. */
  public LossTerms terms() {
    return terms;
  }

  public long examples() {
    return examples;
  }

  /** The slowest partition's compute time: the part of a step no exchange optimisation removes. */
  public double workerSeconds() {
    return workerSeconds;
  }

  /**
   * All partitions' compute time added up. Where the tasks of a step cannot run at once (local
   * mode: one DJL worker per JVM, so the partitions take turns), this, not the slowest partition,
   * is the compute part of the job's wall time.
   */
  public double workerSecondsTotal() {
    return workerSecondsTotal;
  }
}
