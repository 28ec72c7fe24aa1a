package io.capprune.spark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.LossTerms;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.api.Test;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/** A gradient buffer through Spark's serializer, and sums of buffers in either form. */
class GradientBufferTest {

  private static final ClassTag<GradientBuffer> TAG = ClassTag$.MODULE$.apply(GradientBuffer.class);
  private final SerializerInstance ser = new JavaSerializer(new SparkConf()).newInstance();

  private static float[] gradient(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] g = new float[n];
    for (int i = 0; i < n; i++) {
      // 90 % exact zeros, as the weight gradients of pruned entries; the rest over six decades
      g[i] =
          r.nextInt(10) == 0
              ? (float) (r.nextGaussian() * Math.pow(10, -1 - 6 * r.nextDouble()))
              : 0f;
    }
    return g;
  }

  private GradientBuffer roundTrip(GradientBuffer b) {
    ByteBuffer bytes = ser.serialize(b, TAG);
    return ser.deserialize(bytes, TAG);
  }

  @Test
  void fp16BuffersArriveAsTheirEncodingAndSumToTheDecodedSum() {
    // more than one 256 KiB chunk of the raw writer, and not a whole number of blocks
    int n = 300_001;
    float[] a = gradient(n, 1);
    float[] b = gradient(n, 2);
    GradientBuffer ra =
        roundTrip(
            GradientBuffer.of(a, new LossTerms(1, 2, 3, 4, 5, 6), 3, 0.5, WirePrecision.FP16));
    GradientBuffer rb =
        roundTrip(
            GradientBuffer.of(b, new LossTerms(1, 1, 1, 1, 1, 1), 5, 0.7, WirePrecision.FP16));

    float[] da = HalfBlocks.decode(HalfBlocks.encode(a));
    float[] db = HalfBlocks.decode(HalfBlocks.encode(b));
    float[] want = new float[n];
    for (int i = 0; i < n; i++) {
      want[i] = da[i] + db[i];
    }
    GradientBuffer sum = GradientBuffer.empty().add(ra).add(rb);
    assertArrayEquals(want, sum.gradient());
    assertEquals(8, sum.examples());
    assertEquals(new LossTerms(2, 3, 4, 5, 6, 7), sum.terms());
    assertEquals(0.7, sum.workerSeconds());
    assertEquals(1.2, sum.workerSecondsTotal(), 1e-12);

    // a partial sum travels on (re-encoded) and arrives as the encoding of the sum
    assertArrayEquals(HalfBlocks.decode(HalfBlocks.encode(want)), roundTrip(sum).gradient());
    // and an adopted, still-encoded buffer travels on as it came
    assertArrayEquals(
        da,
        roundTrip(
                GradientBuffer.empty()
                    .add(roundTrip(GradientBuffer.of(a, LossTerms.ZERO, 1, 0, WirePrecision.FP16))))
            .gradient());
  }

  @Test
  void fp32BuffersArriveBitExact() {
    float[] a = gradient(70_000, 3);
    a[5] = Float.NaN;
    a[6] = Float.NEGATIVE_INFINITY;
    a[7] = -0f;
    GradientBuffer back = roundTrip(GradientBuffer.of(a, LossTerms.ZERO, 1, 0, WirePrecision.FP32));
    float[] g = back.gradient();
    assertEquals(a.length, g.length);
    for (int i = 0; i < a.length; i++) {
      assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(g[i]), "value " + i);
    }
    assertTrue(roundTrip(GradientBuffer.empty()).isEmpty());
  }

  @Test
  void buffersOfDifferentLayoutsAreRefused() {
    GradientBuffer a =
        roundTrip(GradientBuffer.of(gradient(2048, 1), LossTerms.ZERO, 1, 0, WirePrecision.FP16));
    GradientBuffer b = GradientBuffer.of(gradient(2049, 1), LossTerms.ZERO, 1, 0);
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> GradientBuffer.of(gradient(2049, 2), LossTerms.ZERO, 1, 0).add(a));
    assertTrue(e.getMessage().contains("2049 vs 2048"), e.getMessage());
    assertThrows(
        IllegalStateException.class,
        () -> b.add(GradientBuffer.of(new float[3], LossTerms.ZERO, 1, 0)));
  }
}
