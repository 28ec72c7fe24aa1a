package io.capprune.spark.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What {@code gpu-check} says about the host buffers of GPU transfers: nothing for a CPU executor;
 * for a GPU, page-locked or pageable with the reason. This machine has no NVIDIA driver, so a GPU
 * device's probe must come back pageable and say why (on a GPU node it says page-locked).
 */
class GpuCheckTaskTest {

  @Test
  void aCpuExecutorHasNoHostBufferLine() {
    assertNull(GpuCheckTask.hostBuffers(Device.cpu()));
    String table = GpuCheckTask.table(List.of(result(null)));
    assertTrue(!table.contains("host buffers"), table);
  }

  @Test
  void aGpuWithoutTheDriverLibraryIsReportedPageableWithTheReason() {
    String said = GpuCheckTask.hostBuffers(Device.gpu(0));
    assertTrue(said.startsWith("pageable (") && said.length() > "pageable ()".length(), said);
  }

  @Test
  void theTablePrintsTheHostBuffersUnderTheExecutorsRow() {
    List<String> lines = GpuCheckTask.table(List.of(result("page-locked"))).lines().toList();
    assertEquals(3, lines.size(), String.join("\n", lines));
    assertTrue(lines.get(1).startsWith("0    node-1"), lines.get(1));
    assertEquals("     host buffers for GPU transfers: page-locked", lines.get(2));
  }

  private static GpuCheckTask.Result result(String hostBuffers) {
    ExecutorDevice seen =
        new ExecutorDevice(
            "node-1",
            "1",
            List.of("0"),
            null,
            hostBuffers == null ? "cpu()" : "gpu(0)",
            hostBuffers == null ? 0 : 1,
            "/opt/libtorch/lib",
            "/opt/libtorch/lib",
            "cu128",
            "2.7.1");
    return new GpuCheckTask.Result(
        0, seen, hostBuffers == null ? "cpu()" : "gpu(0)", hostBuffers, null);
  }
}
