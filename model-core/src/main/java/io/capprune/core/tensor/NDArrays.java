package io.capprune.core.tensor;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Conversions between heap tensors ({@link HostTensor}, always float32) and native DJL arrays.
 * Parameters travel as HostTensors and become NDArrays only inside an executor's step scope.
 */
public final class NDArrays {

  private NDArrays() {}

  /**
   * Why no tensor here is ever bfloat16: DJL 0.35.1's PyTorch JNI maps data types to torch types in
   * {@code GetScalarTypeFromDType}, which knows float32/64/16, uint8, int8/32/64, bool and
   * complex64; for bfloat16 it executes a bare {@code throw;}, and the JVM aborts ("terminate
   * called without an active exception"), on the CPU and on GPUs alike.
   */
  public static final String BFLOAT16_UNSUPPORTED =
      "bfloat16 is not supported: DJL 0.35.1's PyTorch"
          + " JNI has no bfloat16 type (GetScalarTypeFromDType) and aborts the JVM when a tensor is"
          + " converted to it; the worker computes in float32";

  /**
   * A 0-dim constant of type {@code dtype} in memory owned by the engine, attached to {@code
   * manager}. Use it instead of {@code NDArray.mul(Number)}, {@code div(Number)} ... on anything
   * autograd tracks: DJL's PyTorch engine wraps the Number in a tensor over a Java direct buffer
   * (no copy) and closes it right after the op, but autograd keeps that tensor for the backward
   * pass, which then reads freed memory once the GC has run (wrong or NaN gradients).
   */
  public static NDArray scalar(NDManager manager, double value, DataType dtype) {
    return manager.full(new Shape(), (float) value, dtype);
  }

  /**
   * x where {@code condition} holds, else y; a 0-dim x or y stands for every element. DJL's where
   * does not broadcast, so both are expanded to the condition's shape (a view, no copy).
   */
  public static NDArray where(NDArray condition, NDArray x, NDArray y) {
    Shape shape = condition.getShape();
    return ai.djl.ndarray.NDArrays.where(
        condition,
        x.getShape().equals(shape) ? x : x.broadcast(shape),
        y.getShape().equals(shape) ? y : y.broadcast(shape));
  }

  /**
   * Copies {@code t} into a new array of type {@code dtype} attached to {@code manager} (and on its
   * device). Floating-point types only: parameters, gradients and masks are never integers.
   */
  public static NDArray toNDArray(NDManager manager, HostTensor t, DataType dtype) {
    Shape shape = new Shape(toLongs(t.shape()));
    switch (dtype) {
      case FLOAT32:
        return owned(manager.create(t.data(), shape));
      case FLOAT64:
        {
          // Widen on the heap: a float32 detour through native memory would cost a second copy.
          float[] src = t.data();
          double[] wide = new double[src.length];
          for (int i = 0; i < src.length; i++) {
            wide[i] = src[i];
          }
          return owned(manager.create(wide, shape));
        }
      case FLOAT16:
        try (NDArray f32 = manager.create(t.data(), shape)) {
          return f32.toType(dtype, true);
        }
      case BFLOAT16:
        throw new IllegalArgumentException(BFLOAT16_UNSUPPORTED);
      default:
        throw new IllegalArgumentException(
            "unsupported parameter data type " + dtype + " (supported: float32, float64, float16)");
    }
  }

  /**
   * An engine-owned copy of {@code fromJava}, which is closed. On the CPU, DJL's PyTorch engine
   * creates arrays from Java data over a direct buffer without copying; when that array's handle is
   * closed while an autograd graph (or a gradient) still refers to the tensor, the GC frees the
   * memory under it. A parameter or an input must not depend on its handle staying open.
   */
  public static NDArray owned(NDArray fromJava) {
    try (fromJava) {
      return fromJava.duplicate();
    }
  }

  /**
   * The float32 values of {@code a} in one device-to-host copy and one heap copy. DJL's {@code
   * toFloatArray} goes through a byte[] the size of the tensor (allocated, zeroed, filled by JNI,
   * then converted): three more passes over what may be hundreds of MB a step.
   */
  public static float[] download(NDArray a) {
    if (a.getDataType() != DataType.FLOAT32) {
      throw new IllegalArgumentException("download takes float32, got " + a.getDataType());
    }
    float[] out = new float[Math.toIntExact(a.size())];
    HostStaging.read(a, buf -> HostCopy.get(buf, out));
    return out;
  }

  /** Copies a floating-point array to the heap as float32 (float64 values are rounded). */
  public static HostTensor toHost(NDArray a) {
    int[] shape = toInts(a.getShape());
    DataType dt = a.getDataType();
    if (dt == DataType.FLOAT32) {
      return new HostTensor(shape, a.toFloatArray());
    }
    if (dt == DataType.FLOAT64) {
      double[] d = a.toDoubleArray();
      float[] f = new float[d.length];
      for (int i = 0; i < d.length; i++) {
        f[i] = (float) d[i];
      }
      return new HostTensor(shape, f);
    }
    if (dt.isFloating()) {
      // stopGradient: the conversion is a copy for the host, not part of any autograd graph.
      try (NDArray detached = a.stopGradient();
          NDArray f32 = detached.toType(DataType.FLOAT32, true)) {
        return new HostTensor(shape, f32.toFloatArray());
      }
    }
    throw new IllegalArgumentException("cannot copy a " + dt + " array to a float32 HostTensor");
  }

  /** {@link #toNDArray} for every entry; keeps the map's iteration order. */
  public static Map<String, NDArray> toNDArrays(
      NDManager manager, Map<String, HostTensor> tensors, DataType dtype) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
      out.put(e.getKey(), toNDArray(manager, e.getValue(), dtype));
    }
    return out;
  }

  /** {@link #toHost} for every entry; keeps the map's iteration order. Errors name the tensor. */
  public static Map<String, HostTensor> toHost(Map<String, NDArray> arrays) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : arrays.entrySet()) {
      try {
        out.put(e.getKey(), toHost(e.getValue()));
      } catch (IllegalArgumentException ex) {
        throw new IllegalArgumentException("tensor '" + e.getKey() + "': " + ex.getMessage(), ex);
      }
    }
    return out;
  }

  /** Widens ints (a shape, ids, labels, rows) to longs. */
  public static long[] toLongs(int[] shape) {
    long[] s = new long[shape.length];
    for (int i = 0; i < shape.length; i++) {
      s[i] = shape[i];
    }
    return s;
  }

  public static int[] toInts(Shape shape) {
    int[] s = new int[shape.dimension()];
    for (int i = 0; i < s.length; i++) {
      long d = shape.get(i);
      if (d > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(
            "dimension " + i + " of shape " + shape + " exceeds int");
      }
      s[i] = (int) d;
    }
    return s;
  }
}
