package io.capprune.core.tensor;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Device-to-host reads through a host tensor kept between calls. DJL copies a GPU array to the host
 * into a freshly allocated host tensor; at BERT-base size the first touch of those pages costs more
 * than the copy: 171 MB of fp16 took 109 ms into a fresh host tensor and 43 ms, heap copy included,
 * into one kept from the step before (H100, {@code DownloadBenchmark}, docs/results.md). One buffer
 * per data type, grown to the largest read, lives as long as the JVM; a CPU array needs none (its
 * bytes are read in place).
 */
public final class HostStaging {

  private static final Map<DataType, NDArray> BUFFERS = new EnumMap<>(DataType.class);
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
      NDArray buffer = BUFFERS.get(a.getDataType());
      if (buffer == null || buffer.size() < n) {
        if (manager == null) {
          manager = NDManager.newBaseManager(Device.cpu());
        }
        if (buffer != null) {
          buffer.close();
        }
        buffer = manager.zeros(new Shape(n), a.getDataType());
        BUFFERS.put(a.getDataType(), buffer);
      }
      try (NDManager scope = manager.newSubManager()) {
        NDArray view = buffer;
        if (buffer.size() != n) {
          // a view of the front; the buffer itself stays with the JVM-long manager
          view = buffer.get(new NDIndex("0:{}", n));
          view.attach(scope);
        }
        NDArray flat = a.reshape(n);
        view.set(new NDIndex(":"), flat);
        if (flat != a) {
          flat.close();
        }
        reader.accept(view.toByteBuffer(true).order(ByteOrder.nativeOrder()));
      }
    }
  }
}
