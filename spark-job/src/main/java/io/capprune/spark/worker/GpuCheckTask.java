package io.capprune.spark.worker;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.capprune.core.tensor.HostBuffer;
import io.capprune.core.tensor.PinnedMemory;
import java.io.Serializable;
import java.util.List;

/**
 * One task of {@code cap-prune gpu-check}: on the executor that runs it, picks the device the
 * training tasks would pick ({@link WorkerRuntime}), creates a tensor there and reduces it, and
 * reports what the executor sees. Failures are reported, not thrown, so that one bad node does not
 * hide the others.
 */
public final class GpuCheckTask {
  /** Elements of the probe tensor: 0, 1, ..., N-1, whose sum is N(N-1)/2 exactly in fp32. */
  static final int N = 1024;

  private GpuCheckTask() {}

  /**
   * @param seen what the executor sees; its device is null when none could be chosen
   * @param tensorDevice the device the probe tensor was created on, as the engine reports it
   * @param hostBuffers for a GPU, whether the host buffers of its transfers are page-locked, or why
   *     not (then they are pageable: slower, not a failure); null on the CPU
   * @param error why the check failed on this executor; null when it passed
   */
  public record Result(
      int partition, ExecutorDevice seen, String tensorDevice, String hostBuffers, String error)
      implements Serializable {
    public boolean ok() {
      return error == null;
    }
  }

  /** Runs on an executor. */
  public static Result probe(int partition, boolean useGpu) {
    WorkerRuntime runtime = WorkerRuntime.get();
    ExecutorDevice seen;
    try {
      seen = runtime.observe();
    } catch (RuntimeException | LinkageError e) {
      return new Result(partition, null, null, null, "the PyTorch engine did not load: " + e);
    }
    try {
      seen = runtime.inspect(useGpu);
    } catch (RuntimeException e) {
      return new Result(partition, seen, null, null, String.valueOf(e.getMessage()));
    }
    try {
      String[] probed =
          runtime.exclusive(useGpu, device -> new String[] {tensorOn(device), hostBuffers(device)});
      return new Result(partition, seen, probed[0], probed[1], null);
    } catch (RuntimeException | LinkageError e) {
      return new Result(
          partition, seen, null, null, e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }

  /**
   * Creates 0..N-1 on {@code device}, sums it there and checks the sum; returns the array's device.
   */
  static String tensorOn(Device device) {
    try (NDManager m = NDManager.newBaseManager(device)) {
      NDArray a = m.arange(0f, (float) N);
      float sum = a.sum().getFloat();
      float expected = N * (N - 1) / 2f;
      if (sum != expected) {
        throw new IllegalStateException(
            "the probe tensor on " + device + " sums to " + sum + ", expected " + expected);
      }
      return a.getDevice().toString();
    }
  }

  /**
   * For a GPU: "page-locked" when a host buffer for its transfers comes from the CUDA driver, else
   * "pageable (why)"; null for the CPU, whose arrays need no staging.
   */
  static String hostBuffers(Device device) {
    if (!device.isGpu()) {
      return null;
    }
    try (HostBuffer probe = new HostBuffer(device)) {
      probe.get(1 << 20);
      if (probe.pinned()) {
        return "page-locked";
      }
      String why = PinnedMemory.unavailableReason();
      return "pageable ("
          + (why != null ? why : "the CUDA driver refused the allocation; see this executor's log")
          + ")";
    }
  }

  /** The table {@code gpu-check} prints, one row per task. */
  public static String table(List<Result> results) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            "%-4s %-20s %-9s %-9s %-12s %-8s %-8s %-5s %-8s %-7s %s%n",
            "task",
            "host",
            "executor",
            "spark-gpu",
            "CUDA_VIS_DEV",
            "device",
            "tensor",
            "gpus",
            "flavour",
            "pytorch",
            "libtorch"));
    for (Result r : results) {
      ExecutorDevice s = r.seen();
      if (s == null) {
        sb.append(String.format("%-4d %s%n", r.partition(), "FAILED: " + r.error()));
        continue;
      }
      sb.append(
          String.format(
              "%-4d %-20s %-9s %-9s %-12s %-8s %-8s %-5d %-8s %-7s %s%n",
              r.partition(),
              s.host(),
              s.executorId(),
              s.gpuAddresses().isEmpty() ? "-" : String.join(",", s.gpuAddresses()),
              s.cudaVisibleDevices() == null ? "unset" : "'" + s.cudaVisibleDevices() + "'",
              s.device() == null ? "-" : s.device(),
              r.tensorDevice() == null ? "-" : r.tensorDevice(),
              s.engineGpus(),
              s.flavour(),
              s.pytorchVersion(),
              s.libtorch()
                  + (s.pytorchLibraryPath() == null
                      ? " (natives jar)"
                      : " (PYTORCH_LIBRARY_PATH)")));
      if (r.hostBuffers() != null) {
        sb.append("     host buffers for GPU transfers: ")
            .append(r.hostBuffers())
            .append(System.lineSeparator());
      }
      if (!r.ok()) {
        sb.append("     FAILED: ").append(r.error()).append(System.lineSeparator());
      }
    }
    return sb.toString();
  }
}
