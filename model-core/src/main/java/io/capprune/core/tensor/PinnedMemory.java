package io.capprune.core.tensor;

import ai.djl.Device;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.IdentityHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Page-locked ("pinned") host memory from the CUDA driver, for the buffers that stage copies
 * between the heap and a GPU. A copy from or to pageable memory goes through the driver's own
 * bounce buffer at 2-4 GB/s on the H100 host (docs/results.md); a page-locked buffer is read by the
 * GPU's copy engine directly. DJL 0.35.1 has no API for it, so this calls {@code cuMemHostAlloc} of
 * {@code libcuda} (part of every NVIDIA driver, unlike the runtime library, whose file name varies
 * with the libtorch build) through JNA, which DJL already brings.
 *
 * <p>Where that is not possible (no GPU, no driver library, an allocation refused, or {@code
 * -Dcapprune.pinned-host-memory=false}) {@link #allocate} answers {@code null} and callers use an
 * ordinary direct buffer: the same bytes, at pageable speed. The first outcome is logged once.
 */
public final class PinnedMemory {

  /** The system property that turns pinned staging off ({@code false}); on by default. */
  public static final String PROPERTY = "capprune.pinned-host-memory";

  private static final Logger LOG = LoggerFactory.getLogger(PinnedMemory.class);
  // pinned for every CUDA context, not only the one current when it was allocated
  private static final int CU_MEMHOSTALLOC_PORTABLE = 0x01;

  /** The few driver entry points used here (CUDA driver API, cuda.h). */
  interface CudaDriver extends Library {
    int cuInit(int flags);

    int cuDeviceGet(IntByReference device, int ordinal);

    int cuDevicePrimaryCtxRetain(PointerByReference context, int device);

    int cuCtxPushCurrent_v2(Pointer context);

    int cuCtxPopCurrent_v2(PointerByReference context);

    int cuMemHostAlloc(PointerByReference pointer, long bytes, int flags);

    int cuMemFreeHost(Pointer pointer);

    int cuGetErrorName(int error, PointerByReference name);
  }

  private static CudaDriver driver;
  // the device's primary context (the one PyTorch uses), retained for the JVM's life
  private static Pointer context;
  private static String unavailable;
  private static boolean logged;
  private static final Map<ByteBuffer, Pointer> LIVE = new IdentityHashMap<>();

  private PinnedMemory() {}

  /**
   * A direct buffer of {@code bytes} page-locked bytes for copies to and from {@code device}, in
   * native byte order, or {@code null} when the device is not a GPU or pinned memory is not
   * available (see the class comment). Free it with {@link #free}.
   */
  public static synchronized ByteBuffer allocate(long bytes, Device device) {
    if (!device.isGpu() || bytes <= 0 || bytes > Integer.MAX_VALUE) {
      return null;
    }
    CudaDriver cuda = driver(device.getDeviceId());
    if (cuda == null) {
      return null;
    }
    PointerByReference p = new PointerByReference();
    // an allocation needs a current context: push the primary one for the call, so the calling
    // thread's own state is left as it was
    int rc = cuda.cuCtxPushCurrent_v2(context);
    if (rc == 0) {
      rc = cuda.cuMemHostAlloc(p, bytes, CU_MEMHOSTALLOC_PORTABLE);
      cuda.cuCtxPopCurrent_v2(new PointerByReference());
    }
    if (rc != 0) {
      LOG.warn(
          "pinned host memory: cuMemHostAlloc of {} MB failed ({}); this buffer stays pageable",
          bytes >> 20,
          errorName(cuda, rc));
      return null;
    }
    ByteBuffer buffer = p.getValue().getByteBuffer(0, bytes).order(ByteOrder.nativeOrder());
    LIVE.put(buffer, p.getValue());
    if (!logged) {
      logged = true;
      LOG.info(
          "host buffers for {} transfers: page-locked through the CUDA driver (first {} MB)",
          device,
          bytes >> 20);
    }
    return buffer;
  }

  /** Frees a buffer {@link #allocate} gave; any other buffer is left to the garbage collector. */
  public static synchronized void free(ByteBuffer buffer) {
    Pointer p = buffer == null ? null : LIVE.remove(buffer);
    if (p != null) {
      int rc = driver.cuCtxPushCurrent_v2(context);
      if (rc == 0) {
        rc = driver.cuMemFreeHost(p);
        driver.cuCtxPopCurrent_v2(new PointerByReference());
      }
      if (rc != 0) {
        LOG.warn("pinned host memory: cuMemFreeHost failed ({})", errorName(driver, rc));
      }
    }
  }

  /** Whether {@code buffer} is one of {@link #allocate}'s page-locked buffers. */
  public static synchronized boolean isPinned(ByteBuffer buffer) {
    return buffer != null && LIVE.containsKey(buffer);
  }

  /**
   * Why pinned memory is not used, or {@code null} while it is (or was not asked for yet): for the
   * executor's one-line device report and the benchmarks.
   */
  public static synchronized String unavailableReason() {
    return unavailable;
  }

  /** One phrase for logs and benchmark output: what the host buffers of GPU transfers are. */
  public static synchronized String describe() {
    if (unavailable != null) {
      return "pageable (" + unavailable + ")";
    }
    return driver != null ? "page-locked (" + LIVE.size() + " buffers)" : "none allocated yet";
  }

  /** The driver with the device's primary context retained, or null (reason logged once). */
  private static CudaDriver driver(int ordinal) {
    if (driver != null || unavailable != null) {
      return driver;
    }
    if (!Boolean.parseBoolean(System.getProperty(PROPERTY, "true"))) {
      return refuse("-D" + PROPERTY + "=false");
    }
    CudaDriver cuda = null;
    Throwable failure = null;
    for (String name : new String[] {"cuda", "libcuda.so.1"}) {
      try {
        cuda = Native.load(name, CudaDriver.class);
        break;
      } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
        failure = e;
      }
    }
    if (cuda == null) {
      return refuse("the CUDA driver library (libcuda) does not load: " + firstLine(failure));
    }
    int rc = cuda.cuInit(0);
    IntByReference dev = new IntByReference();
    if (rc == 0) {
      rc = cuda.cuDeviceGet(dev, ordinal);
    }
    PointerByReference ctx = new PointerByReference();
    if (rc == 0) {
      rc = cuda.cuDevicePrimaryCtxRetain(ctx, dev.getValue());
    }
    if (rc != 0) {
      return refuse("the CUDA driver answered " + errorName(cuda, rc));
    }
    context = ctx.getValue();
    driver = cuda;
    return driver;
  }

  /** JNA's message lists every path it tried (the whole class path): the first line says why. */
  private static String firstLine(Throwable t) {
    String[] lines = String.valueOf(t.getMessage()).strip().split("\\R");
    String line = lines[0].strip();
    if (line.endsWith(":") && lines.length > 1) {
      // "Unable to load library 'libcuda.so.1':" and the reason on the next line
      line += " " + lines[1].strip();
    }
    return line.length() <= 200 ? line : line.substring(0, 200) + "...";
  }

  private static CudaDriver refuse(String reason) {
    unavailable = reason;
    LOG.info("host buffers for GPU transfers: pageable ({})", reason);
    return null;
  }

  private static String errorName(CudaDriver cuda, int rc) {
    PointerByReference name = new PointerByReference();
    if (cuda.cuGetErrorName(rc, name) == 0 && name.getValue() != null) {
      return name.getValue().getString(0) + " (" + rc + ")";
    }
    return "error " + rc;
  }
}
