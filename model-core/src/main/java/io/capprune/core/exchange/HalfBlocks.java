package io.capprune.core.exchange;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HalfPrecision;
import io.capprune.core.tensor.HostCopy;
import io.capprune.core.tensor.HostStaging;
import io.capprune.core.tensor.NDArrays;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * fp32 arrays as IEEE binary16 with one power-of-two scale per block of {@value #BLOCK} values: the
 * block's largest magnitude is scaled into [2^14, 2^15) before rounding, so gradients of 1e-9 do
 * not flush to zero and large ones do not overflow, and every value keeps binary16's 11 significant
 * bits relative to its block's largest (relative error at most 2^-11 for values within 2^14 of it).
 * Scaling by a power of two is exact, so decoding is one multiply. Non-finite blocks go unscaled,
 * so a NaN or infinite gradient still reaches the driver as one.
 */
public final class HalfBlocks {
  public static final int BLOCK = 1024;

  private HalfBlocks() {}

  /** Encoded values: halves, and per block the power of two they were multiplied by. */
  public record Encoded(short[] halves, byte[] exponents) {}

  public static Encoded encode(float[] values) {
    int blocks = (values.length + BLOCK - 1) / BLOCK;
    short[] halves = new short[values.length];
    byte[] exponents = new byte[blocks];
    for (int b = 0; b < blocks; b++) {
      int from = b * BLOCK;
      exponents[b] =
          encodeBlock(values, from, Math.min(values.length, from + BLOCK) - from, halves, from);
    }
    return new Encoded(halves, exponents);
  }

  /**
   * {@link #encode} with the blocks spread over the cores (the driver packs 10^8 values a step).
   */
  public static Encoded encodeParallel(float[] values) {
    int blocks = (values.length + BLOCK - 1) / BLOCK;
    short[] halves = new short[values.length];
    byte[] exponents = new byte[blocks];
    forBlockChunks(
        blocks,
        (fromBlock, toBlock) -> {
          for (int b = fromBlock; b < toBlock; b++) {
            int from = b * BLOCK;
            exponents[b] =
                encodeBlock(
                    values, from, Math.min(values.length, from + BLOCK) - from, halves, from);
          }
        });
    return new Encoded(halves, exponents);
  }

  /**
   * Encodes one block of at most {@value #BLOCK} values, {@code src[srcFrom, srcFrom + n)}, into
   * {@code dst} from {@code dstFrom}; returns the block's exponent. Lets a caller encode values it
   * gathers block by block without a full-size fp32 copy.
   */
  public static byte encodeBlock(float[] src, int srcFrom, int n, short[] dst, int dstFrom) {
    // The largest magnitude through the bits: |x| orders like its bits without the sign, and an
    // int max has no NaN case to test per value (a NaN's bits exceed infinity's, so a block with
    // a NaN still counts as not finite below).
    int maxBits = 0;
    for (int i = 0; i < n; i++) {
      maxBits = Math.max(maxBits, Float.floatToRawIntBits(src[srcFrom + i]) & 0x7fffffff);
    }
    float max = Float.intBitsToFloat(maxBits);
    int e = 0;
    if (max > 0 && Float.isFinite(max)) {
      // max * 2^e in [2^14, 2^15): well below binary16's largest finite value 65504
      e = Math.max(-126, Math.min(126, 14 - Math.getExponent(max)));
    }
    byte exponent = (byte) Math.max(Byte.MIN_VALUE, Math.min(Byte.MAX_VALUE, e));
    float scale = Math.scalb(1f, exponent);
    if (Float.isFinite(max)) {
      for (int i = 0; i < n; i++) {
        dst[dstFrom + i] = scaledToF16(src[srcFrom + i] * scale);
      }
    } else {
      for (int i = 0; i < n; i++) {
        dst[dstFrom + i] = HalfPrecision.floatToF16(src[srcFrom + i] * scale);
      }
    }
    return exponent;
  }

  // 0.5f: adding it to a float below 2^-14 leaves the binary16 subnormal, rounded to nearest even,
  // in the low mantissa bits (F. Giesen's float_to_half_fast3_rtne)
  private static final int SUBNORMAL_MAGIC = 126 << 23;

  /**
   * {@link HalfPrecision#floatToF16} for a value of magnitude below 2^15 (so neither overflow nor
   * NaN), without a branch on the value: a block scaled into [2^14, 2^15) is all such values, and
   * in a gradient of pruned matrices zeros and normal values alternate unpredictably. The same bits
   * as {@code floatToF16} for every such float (checked in ExchangeCodecTest).
   */
  static short scaledToF16(float f) {
    int x = Float.floatToRawIntBits(f);
    int sign = (x >>> 16) & 0x8000;
    int a = x & 0x7fffffff;
    // normal: rebias the exponent (127 -> 15), round the 13 dropped bits to nearest even
    int normal = (a - ((127 - 15) << 23) + 0xfff + ((a >>> 13) & 1)) >>> 13;
    int subnormal =
        Float.floatToRawIntBits(Float.intBitsToFloat(a) + Float.intBitsToFloat(SUBNORMAL_MAGIC))
            - SUBNORMAL_MAGIC;
    return (short) (sign | (a < 0x38800000 ? subnormal : normal));
  }

  public static float[] decode(Encoded e) {
    float[] out = new float[e.halves().length];
    decodeInto(e, out);
    return out;
  }

  /** Decodes into {@code out}, which must have exactly as many values. */
  public static void decodeInto(Encoded e, float[] out) {
    int blocks = checkedBlocks(e, out);
    decodeBlocks(e, out, 0, blocks, false);
  }

  /** {@link #decodeInto} with the blocks spread over the cores; the same bits. */
  public static void decodeIntoParallel(Encoded e, float[] out) {
    forBlockChunks(checkedBlocks(e, out), (from, to) -> decodeBlocks(e, out, from, to, false));
  }

  /**
   * Adds the values {@code e} encodes to {@code acc} ({@code acc[i] += value i}), with the blocks
   * spread over the cores. Where gradient buffers meet, each one is summed straight from its
   * halves: no full-size float copy of it is allocated, touched and thrown away. The same bits as
   * decoding first and adding (each product is rounded to float before the sum either way).
   */
  public static void addTo(Encoded e, float[] acc) {
    forBlockChunks(checkedBlocks(e, acc), (from, to) -> decodeBlocks(e, acc, from, to, true));
  }

  private static int checkedBlocks(Encoded e, float[] out) {
    if (out.length != e.halves().length) {
      throw new IllegalArgumentException(
          "decoding " + e.halves().length + " halves into " + out.length + " floats");
    }
    return blocks(e);
  }

  /** The block count of {@code e}, checked against its exponents. */
  private static int blocks(Encoded e) {
    int n = e.halves().length;
    int blocks = (n + BLOCK - 1) / BLOCK;
    if (e.exponents().length != blocks) {
      throw new IllegalArgumentException(
          n + " halves need " + blocks + " block exponents, got " + e.exponents().length);
    }
    return blocks;
  }

  /** Decodes blocks {@code [fromBlock, toBlock)} into {@code out}, or adds them to it. */
  private static void decodeBlocks(
      Encoded e, float[] out, int fromBlock, int toBlock, boolean add) {
    short[] h = e.halves();
    byte[] exponents = e.exponents();
    for (int b = fromBlock; b < toBlock; b++) {
      int from = b * BLOCK;
      int to = Math.min(h.length, from + BLOCK);
      float inv = Math.scalb(1f, -exponents[b]);
      if (add) {
        for (int i = from; i < to; i++) {
          out[i] += HalfPrecision.f16ToFloat(h[i]) * inv;
        }
      } else {
        for (int i = from; i < to; i++) {
          out[i] = HalfPrecision.f16ToFloat(h[i]) * inv;
        }
      }
    }
  }

  /** Blocks {@code [0, blocks)} in chunks of 256 blocks (256 Ki values) on the driver's pool. */
  private static void forBlockChunks(int blocks, BlockRange body) {
    int perChunk = 256;
    ParallelLoops.forEach(
        (blocks + perChunk - 1) / perChunk,
        c -> body.run(c * perChunk, Math.min(blocks, (c + 1) * perChunk)));
  }

  private interface BlockRange {
    void run(int fromBlock, int toBlock);
  }

  /**
   * Decodes on the device of {@code into}: the halves and block exponents go up as they are (2
   * bytes a value, half of fp32), and the scaling runs there. The same floats as {@link #decode} (a
   * half widens exactly and both multiply by the same power of two). {@code staging} is a direct
   * buffer of at least {@link #stagingBytes} bytes that the caller keeps between calls (a fresh one
   * per call would cost the first touch of its pages); its contents are overwritten.
   *
   * @return a flat float32 vector of {@code e}'s length, attached to {@code into}
   */
  public static NDArray decode(Encoded e, NDManager into, ByteBuffer staging) {
    int n = e.halves().length;
    int blocks = blocks(e);
    if (blocks == 0) {
      return into.zeros(new Shape(0), DataType.FLOAT32);
    }
    long padded = (long) blocks * BLOCK;
    if (staging.capacity() < stagingBytes(n)) {
      throw new IllegalArgumentException(
          "staging buffer of " + staging.capacity() + " bytes, need " + stagingBytes(n));
    }
    ByteBuffer b = staging.duplicate().order(ByteOrder.nativeOrder());
    b.clear().limit((int) (2 * padded));
    b = b.slice().order(ByteOrder.nativeOrder());
    HostCopy.put(e.halves(), b);
    // the tail of the last block: zeros (the buffer is reused, so clear what an older call left)
    for (long i = 2L * n; i < 2 * padded; i++) {
      b.put((int) i, (byte) 0);
    }
    float[] scales = new float[blocks];
    for (int i = 0; i < blocks; i++) {
      scales[i] = Math.scalb(1f, -e.exponents()[i]);
    }
    try (NDManager m = into.newSubManager()) {
      NDArray halves = m.create(b, new Shape(blocks, BLOCK), DataType.FLOAT16);
      NDArray scale = NDArrays.owned(m.create(scales, new Shape(blocks, 1)));
      NDArray out =
          halves
              .toType(DataType.FLOAT32, false)
              .mul(scale)
              .reshape(padded)
              .get(new NDIndex().addSliceDim(0, n));
      out.attach(into);
      return out;
    }
  }

  /** The staging bytes {@link #decode(Encoded, NDManager, ByteBuffer)} needs for n values. */
  public static long stagingBytes(long n) {
    return 2 * ((n + BLOCK - 1) / BLOCK) * BLOCK;
  }

  /**
   * {@link #encode} on the device that holds {@code values} (a flat float vector, e.g. a worker's
   * gradient): block maxima, exponents, scaling and rounding to binary16 run there, and the halves
   * and the block exponents come back to the heap in one copy. Gives the same bits as the host
   * encoder (both scale by exact powers of two and round to nearest even).
   */
  public static Encoded encode(NDArray values) {
    long n = values.getShape().size();
    if (values.getShape().dimension() != 1 || n > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException(
          "encode a flat vector of under 2^31 values, got " + values.getShape());
    }
    int blocks = (int) ((n + BLOCK - 1) / BLOCK);
    if (blocks == 0) {
      return new Encoded(new short[0], new byte[0]);
    }
    long padded = (long) blocks * BLOCK;
    try (NDManager m = values.getManager().newSubManager()) {
      // a copy in this scope: every temporary below is freed when it closes
      NDArray v = values.toType(DataType.FLOAT32, true);
      v.attach(m);
      if (padded > n) {
        v = v.concat(m.zeros(new Shape(padded - n), DataType.FLOAT32));
      }
      v = v.reshape(blocks, BLOCK);
      NDArray max = v.abs().max(new int[] {1});
      // e = 14 - floor(log2 max), in float64 so that floor never rounds up at a power of two
      NDArray e =
          NDArrays.scalar(m, 14, DataType.FLOAT64)
              .sub(max.toType(DataType.FLOAT64, false).log2().floor())
              .clip(-126, 126);
      NDArray scaled =
          max.gt(NDArrays.scalar(m, 0, DataType.FLOAT32))
              .logicalAnd(max.isInfinite().logicalNot())
              .logicalAnd(max.isNaN().logicalNot());
      e = NDArrays.where(scaled, e, NDArrays.scalar(m, 0, DataType.FLOAT64));
      NDArray index =
          e.add(NDArrays.scalar(m, 126, DataType.FLOAT64)).toType(DataType.INT64, false);
      NDArray scale = powersOfTwo(m, v.getDevice()).get(index).reshape(blocks, 1);
      NDArray halves = v.mul(scale).toType(DataType.FLOAT16, false).reshape(padded);
      // exponents travel as halves too (integers in [-126, 126] are exact): one download
      NDArray both = halves.concat(e.toType(DataType.FLOAT16, false));
      // through a host buffer kept between steps (DJL's own copy allocates a fresh one)
      short[] h = new short[(int) n];
      byte[] x = new byte[blocks];
      HostStaging.read(
          both,
          buf -> {
            HostCopy.get(buf, h);
            java.nio.ShortBuffer sb = buf.asShortBuffer();
            sb.position((int) padded);
            for (int b = 0; b < blocks; b++) {
              x[b] = (byte) HalfPrecision.f16ToFloat(sb.get());
            }
          });
      return new Encoded(h, x);
    }
  }

  /**
   * 2^-126 ... 2^126 as float32, exactly (entry i is 2^(i - 126)), made on the device: a copy from
   * the heap would wait there for every kernel queued before it. A running product in float64,
   * where every partial product of these powers of two, in whatever order a parallel scan takes
   * them, is exact (none reaches 2^1023), then rounded to float32, which holds each exactly.
   */
  private static NDArray powersOfTwo(NDManager m, Device device) {
    NDArray first = m.full(new Shape(1), Math.scalb(1f, -126), DataType.FLOAT64, device);
    NDArray twos = m.full(new Shape(252), 2f, DataType.FLOAT64, device);
    return first.concat(twos).cumProd(0).toType(DataType.FLOAT32, false);
  }

  /** Bytes on the wire for {@code n} values (payload only). */
  public static long bytes(long n) {
    return 2 * n + (n + BLOCK - 1) / BLOCK;
  }
}
