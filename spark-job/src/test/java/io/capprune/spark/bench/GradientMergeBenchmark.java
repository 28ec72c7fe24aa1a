package io.capprune.spark.bench;

import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.LossTerms;
import io.capprune.spark.train.GradientBuffer;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.SerializerInstance;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * What the exchange costs per gradient buffer where partitions' gradients meet (an executor of
 * {@code treeAggregate}, and the driver): Spark's Java serialisation of an fp16 buffer (a partial
 * sum is encoded on the way out), reading it back, and adding it to a running sum. These are the
 * "serialise + decode + merge" input of the scaling model in docs/performance.md, measured at
 * BERT-base size instead of scaled from MiniLM.
 *
 * <p>The merge is timed two ways: as {@link GradientBuffer#add} does it now (the buffer stays
 * encoded after reading and is added from its halves on all cores) and as it did before (decoded
 * into a fresh float[] on reading, then added in one thread), rebuilt here from the same {@link
 * HalfBlocks} calls. Both give the same bits, which is checked.
 *
 * <pre>
 * bin/cap-prune-bench gradient-merge [--values=85646594] [--buffers=3] [--reps=5]
 * </pre>
 */
public final class GradientMergeBenchmark {

  private GradientMergeBenchmark() {}

  public static void main(String[] args) {
    int values = 85_646_594; // BERT-base trainable values (WorkerStepBenchmark)
    int buffers = 3;
    int reps = 5;
    for (String a : args) {
      if (a.startsWith("--values=")) {
        values = Integer.parseInt(a.substring(9));
      } else if (a.startsWith("--buffers=")) {
        buffers = Integer.parseInt(a.substring(10));
      } else if (a.startsWith("--reps=")) {
        reps = Integer.parseInt(a.substring(7));
      } else {
        throw new IllegalArgumentException(
            "unknown argument '" + a + "' (--values=N --buffers=K --reps=R)");
      }
    }
    System.out.printf(
        Locale.ROOT,
        "gradient merge: %,d values per buffer, %d buffers, %d reps, %d cores, load %.2f%n",
        values,
        buffers,
        reps,
        Runtime.getRuntime().availableProcessors(),
        ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());

    SerializerInstance ser = new JavaSerializer(new SparkConf()).newInstance();
    ClassTag<GradientBuffer> tag = ClassTag$.MODULE$.apply(GradientBuffer.class);
    List<float[]> grads = new ArrayList<>();
    SplittableRandom rnd = new SplittableRandom(7);
    for (int k = 0; k < buffers; k++) {
      float[] g = new float[values];
      for (int i = 0; i < values; i++) {
        // gradients span decades within a tensor; the block scaling keeps the small ones
        g[i] = (float) (rnd.nextGaussian() * Math.pow(10, -2 - 4 * rnd.nextDouble()));
      }
      grads.add(g);
    }

    double[] write = new double[reps];
    double[] read = new double[reps];
    double[] mergeNow = new double[reps];
    double[] mergeBefore = new double[reps];
    double[] encodeBefore = new double[reps];
    double[] encodeNow = new double[reps];
    long bytes = 0;
    for (int r = 0; r < reps; r++) {
      List<ByteBuffer> wire = new ArrayList<>();
      long t0 = System.nanoTime();
      for (float[] g : grads) {
        wire.add(
            ser.serialize(GradientBuffer.of(g, LossTerms.ZERO, 32, 0, WirePrecision.FP16), tag));
      }
      write[r] = (System.nanoTime() - t0) / 1e6 / buffers;
      bytes = wire.get(0).remaining();

      t0 = System.nanoTime();
      List<GradientBuffer> received = new ArrayList<>();
      for (ByteBuffer b : wire) {
        received.add(ser.deserialize(b.duplicate(), tag));
      }
      read[r] = (System.nanoTime() - t0) / 1e6 / buffers;

      // now: the first buffer becomes the sum (decoded once), the others are added from halves
      t0 = System.nanoTime();
      GradientBuffer sum = GradientBuffer.empty();
      for (GradientBuffer b : received) {
        sum.add(b);
      }
      float[] now = sum.gradient();
      mergeNow[r] = (System.nanoTime() - t0) / 1e6 / buffers;
      received = null;

      // before: a partial sum encoded in one thread on the way out; every buffer decoded into a
      // fresh float[] when read, then a one-thread add
      List<HalfBlocks.Encoded> encoded = new ArrayList<>();
      t0 = System.nanoTime();
      for (float[] g : grads) {
        encoded.add(HalfBlocks.encode(g));
      }
      encodeBefore[r] = (System.nanoTime() - t0) / 1e6 / buffers;
      t0 = System.nanoTime();
      for (float[] g : grads) {
        HalfBlocks.encodeParallel(g);
      }
      encodeNow[r] = (System.nanoTime() - t0) / 1e6 / buffers;
      t0 = System.nanoTime();
      float[] before = null;
      for (HalfBlocks.Encoded e : encoded) {
        float[] d = HalfBlocks.decode(e);
        if (before == null) {
          before = d;
        } else {
          for (int i = 0; i < before.length; i++) {
            before[i] += d[i];
          }
        }
      }
      mergeBefore[r] = (System.nanoTime() - t0) / 1e6 / buffers;
      if (!Arrays.equals(now, before)) {
        throw new IllegalStateException("the two merges disagree");
      }
      System.out.printf(
          Locale.ROOT,
          "rep %d: serialise %.1f ms, read %.1f ms, merge now %.1f ms, before %.1f ms per buffer%n",
          r + 1,
          write[r],
          read[r],
          mergeNow[r],
          mergeBefore[r]);
    }
    System.out.printf(
        Locale.ROOT,
        "%n| per buffer of %,d values (%.1f MB on the wire), medians of %d | ms | ns per value |%n"
            + "|---|---|---|%n",
        values,
        bytes / 1e6,
        reps);
    row(
        "Java serialisation of a partial sum, encoding to fp16 (all cores) included",
        write,
        values);
    row("of it: fp16 encoding, all cores (now)", encodeNow, values);
    row("fp16 encoding, one thread", encodeBefore, values);
    row("deserialisation (kept encoded)", read, values);
    row("merge into the sum, now (from the halves, all cores)", mergeNow, values);
    row(
        "decode + merge, before (fresh float[] per buffer when read, one thread)",
        mergeBefore,
        values);
    System.out.printf(
        Locale.ROOT,
        "| serialise + read + merge, now | %.1f | %.2f |%n",
        median(write) + median(read) + median(mergeNow),
        (median(write) + median(read) + median(mergeNow)) * 1e6 / values);
    System.out.printf(
        Locale.ROOT,
        "load at the end %.2f%n",
        ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
  }

  private static void row(String name, double[] ms, int values) {
    System.out.printf(
        Locale.ROOT, "| %s | %.1f | %.2f |%n", name, median(ms), median(ms) * 1e6 / values);
  }

  private static double median(double[] xs) {
    double[] s = xs.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }
}
