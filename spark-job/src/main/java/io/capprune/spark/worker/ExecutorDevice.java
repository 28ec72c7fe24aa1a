package io.capprune.spark.worker;

import java.io.Serializable;
import java.util.List;

/**
 * What one executor (or the local-mode driver) sees when it picks its device: logged once per JVM
 * by {@link WorkerRuntime}, and one row of {@code cap-prune gpu-check}.
 *
 * @param gpuAddresses the GPU addresses Spark assigned to the task (empty: none)
 * @param cudaVisibleDevices the process's CUDA_VISIBLE_DEVICES, null when unset
 * @param device the device chosen, e.g. {@code gpu(0)} or {@code cpu()}; null when none could be
 * @param engineGpus GPUs the PyTorch engine sees; -1 when the engine did not load
 * @param pytorchLibraryPath the process's PYTORCH_LIBRARY_PATH, null when unset (DJL then uses the
 *     natives jar on the classpath)
 * @param libtorch the libtorch directory DJL loaded (PYTORCH_LIBRARY_PATH, or where DJL unpacked
 *     the natives jar); null when the engine did not load
 * @param flavour libtorch's flavour: cpu, cu128, ...
 */
public record ExecutorDevice(
    String host,
    String executorId,
    List<String> gpuAddresses,
    String cudaVisibleDevices,
    String device,
    int engineGpus,
    String pytorchLibraryPath,
    String libtorch,
    String flavour,
    String pytorchVersion)
    implements Serializable {

  public ExecutorDevice {
    gpuAddresses = List.copyOf(gpuAddresses);
  }

  /** One line for the executor's log. */
  public String describe() {
    return "executor "
        + executorId
        + " on "
        + host
        + ": device "
        + (device == null ? "none" : device)
        + ", Spark GPU addresses "
        + (gpuAddresses.isEmpty() ? "none" : String.join(",", gpuAddresses))
        + ", CUDA_VISIBLE_DEVICES "
        + (cudaVisibleDevices == null ? "unset" : "'" + cudaVisibleDevices + "'")
        + ", PyTorch engine "
        + pytorchVersion
        + " sees "
        + engineGpus
        + " GPU(s)"
        + ", libtorch "
        + libtorch
        + " (PYTORCH_LIBRARY_PATH "
        + orUnset(pytorchLibraryPath)
        + "), flavour "
        + flavour;
  }

  private static String orUnset(String s) {
    return s == null || s.isEmpty() ? "unset" : s;
  }
}
