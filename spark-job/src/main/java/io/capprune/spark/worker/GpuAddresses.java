package io.capprune.spark.worker;

import java.util.ArrayList;
import java.util.List;

/**
 * From the GPU address Spark assigned to a task to the CUDA ordinal this process must use.
 *
 * <p>Spark's address is what the discovery script reported: {@code deploy/gpu-discovery.sh} reports
 * {@code nvidia-smi}'s indices, which are physical ordinals (nvidia-smi ignores {@code
 * CUDA_VISIBLE_DEVICES}). CUDA, and so libtorch, numbers only the devices that {@code
 * CUDA_VISIBLE_DEVICES} lists, in the order it lists them. So:
 *
 * <ul>
 *   <li>without {@code CUDA_VISIBLE_DEVICES} (a node or a container that sees its GPUs as they
 *       are), the CUDA ordinal is the address itself;
 *   <li>with it (YARN without GPU isolation, some container runtimes, a user's shell), the CUDA
 *       ordinal is the position of the address in that list: {@code CUDA_VISIBLE_DEVICES=2,3} and
 *       address {@code 3} give ordinal 1.
 * </ul>
 *
 * <p>An address the list does not hold, or a list CUDA would read as empty, is an error: guessing
 * would put two executors on one GPU, or a task on a GPU it was not given.
 */
public final class GpuAddresses {
  private GpuAddresses() {}

  /**
   * The CUDA ordinal of {@code sparkAddress}.
   *
   * @param cudaVisibleDevices the process's {@code CUDA_VISIBLE_DEVICES}, null when unset
   * @throws IllegalArgumentException when the address cannot be mapped; the message says why
   */
  public static int cudaOrdinal(String sparkAddress, String cudaVisibleDevices) {
    if (sparkAddress == null || sparkAddress.isBlank()) {
      throw new IllegalArgumentException("Spark assigned an empty GPU address");
    }
    String address = sparkAddress.trim();
    if (cudaVisibleDevices == null) {
      Integer ordinal = ordinal(address);
      if (ordinal == null) {
        throw new IllegalArgumentException(
            "Spark assigned GPU address '"
                + address
                + "', which is not an "
                + "ordinal, and CUDA_VISIBLE_DEVICES is not set: the discovery script must report GPU indices "
                + "(deploy/gpu-discovery.sh reports nvidia-smi's)");
      }
      return ordinal;
    }
    List<String> visible = entries(cudaVisibleDevices);
    if (visible.isEmpty()) {
      throw new IllegalArgumentException(
          "Spark assigned GPU "
              + address
              + " but CUDA_VISIBLE_DEVICES='"
              + cudaVisibleDevices
              + "' hides every GPU from this process");
    }
    Integer wanted = ordinal(address);
    for (int i = 0; i < visible.size(); i++) {
      String entry = visible.get(i);
      Integer e = ordinal(entry);
      if (wanted != null && e != null ? wanted.equals(e) : entry.equals(address)) {
        return i;
      }
    }
    boolean ids = visible.stream().anyMatch(v -> ordinal(v) == null);
    throw new IllegalArgumentException(
        "Spark assigned GPU "
            + address
            + " (the index the discovery script "
            + "reported) but CUDA_VISIBLE_DEVICES="
            + cudaVisibleDevices
            + " does not list it, so CUDA in this "
            + "executor cannot use it"
            + (ids
                ? "; the list holds GPU UUIDs or MIG ids, which cannot be matched with an index: "
                    + "list indices, or make the discovery script report the same ids"
                : "")
            + ". deploy/gpu-discovery.sh reports only the GPUs CUDA_VISIBLE_DEVICES lists; a discovery script "
            + "that ignores it offers GPUs this process cannot see");
  }

  /**
   * The entries CUDA reads: comma-separated, trimmed; CUDA stops at the first entry that is not a
   * device (an empty one, or a negative index such as -1), and so does this.
   */
  static List<String> entries(String cudaVisibleDevices) {
    List<String> out = new ArrayList<>();
    for (String raw : cudaVisibleDevices.split(",", -1)) {
      String e = raw.trim();
      if (e.isEmpty() || e.startsWith("-")) {
        break;
      }
      out.add(e);
    }
    return out;
  }

  private static Integer ordinal(String s) {
    if (!s.matches("[0-9]{1,9}")) {
      return null;
    }
    return Integer.parseInt(s);
  }
}
