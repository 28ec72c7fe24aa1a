package io.capprune.core.tensor;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Device-to-host reads through a host buffer kept between calls. DJL copies a GPU array to the host
 * into a freshly allocated host tensor; at BERT-base size the first touch of those pages costs more
 * than the copy: 171 MB of fp16 took 109 ms into a fresh host tensor and 43 ms, heap copy included,
 * into one kept from the step before (H100, {@code DownloadBenchmark}, docs/results.md). One {@link
 * HostBuffer} per data type (page-locked for a GPU where the driver allows), grown to the largest
 * read, lives as long as the JVM, with a CPU tensor over it that the copy writes into; a CPU array
 * needs none (its bytes are read in place).
 */
public final class HostStaging {

  /** The kept bytes and a CPU tensor that is a view of all of them. */
  private record Staged(HostBuffer bytes, ByteBuffer whole, NDArray array) {}

  private static final Map<DataType, Staged> BUFFERS = new EnumMap<>(DataType.class);
  private static NDManager manager;

  private HostStaging() {}

  /**
   * Hands the values of {@code a} (row-major, native byte order) to {@code reader}. The buffer is
   * valid only inside the call: copy what is needed out of it there.
   */
  public static void read(NDArray a, Consumer<ByteBuffer> reader) {
    read(a, reader, !a.getDevice().equals(Device.cpu()));
  }

  /** {@code staged}: through the kept buffer; tests take this path on the CPU. */
  static void read(NDArray a, Consumer<ByteBuffer> reader, boolean staged) {
    if (!staged) {
      reader.accept(a.toByteBuffer(true).order(ByteOrder.nativeOrder()));
      return;
    }
    synchronized (HostStaging.class) {
      long n = a.size();
      DataType type = a.getDataType();
      long bytes = n * type.getNumOfBytes();
      Staged s = BUFFERS.get(type);
      if (s == null || s.array().size() < n) {
        if (manager == null) {
          manager = NDManager.newBaseManager(Device.cpu());
        }
        if (s != null) {
          // the view goes before its memory does
          s.array().close();
          s.bytes().close();
        }
        HostBuffer host = new HostBuffer(a.getDevice());
        ByteBuffer whole = host.get(bytes);
        // a view of the kept bytes (DJL wraps a direct buffer without copying on the CPU)
        s = new Staged(host, whole, manager.create(whole, new Shape(n), type));
        BUFFERS.put(type, s);
      }
      NDArray flat = a.reshape(n);
      try {
        // copy_ into the front of the kept tensor, straight from the device. DJL's own
        // set(NDIndex, NDArray) first moves the value to the host into a fresh (pageable) tensor,
        // which would undo the kept, page-locked buffer
        JniUtils.indexSet(
            (PtNDArray) s.array(),
            (PtNDArray) flat,
            new long[] {0},
            new long[] {n},
            new long[] {1});
      } finally {
        if (flat != a) {
          flat.close();
        }
      }
      ByteBuffer out = s.whole().duplicate();
      out.clear().limit((int) bytes);
      reader.accept(out.slice().order(ByteOrder.nativeOrder()));
    }
  }
}
