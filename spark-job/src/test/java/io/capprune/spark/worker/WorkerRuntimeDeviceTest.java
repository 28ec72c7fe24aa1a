package io.capprune.spark.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.List;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.Logger;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.Test;

/**
 * Which device a task gets: the GPU Spark assigned (mapped through CUDA_VISIBLE_DEVICES) when GPUs
 * are scheduled, never a silent fall-back to the CPU; and the line each executor logs once.
 */
class WorkerRuntimeDeviceTest {
  private static final String LIBTORCH = "/opt/libtorch/lib";

  @Test
  void withoutScheduledGpusTasksRunOnTheCpu() {
    assertEquals(
        -1,
        WorkerRuntime.chooseGpu(true, 0, List.of(), null, 0, LIBTORCH, "cpu"),
        "auto on a CPU cluster");
    assertEquals(
        -1,
        WorkerRuntime.chooseGpu(false, 1, List.of("0"), null, 8, LIBTORCH, "cu128"),
        "use-gpu = false keeps the CPU even where Spark assigned a GPU");
  }

  @Test
  void theAssignedGpuIsUsedThroughCudaVisibleDevices() {
    assertEquals(3, WorkerRuntime.chooseGpu(true, 1, List.of("3"), null, 4, LIBTORCH, "cu128"));
    assertEquals(1, WorkerRuntime.chooseGpu(true, 1, List.of("3"), "2,3", 2, LIBTORCH, "cu128"));
  }

  @Test
  void aTaskWithoutItsGpuFailsInsteadOfRunningOnTheCpu() {
    IllegalStateException none =
        assertThrows(
            IllegalStateException.class,
            () -> WorkerRuntime.chooseGpu(true, 1, List.of(), null, 1, LIBTORCH, "cu128"));
    assertTrue(
        none.getMessage().startsWith("cap.worker.use-gpu:")
            && none.getMessage().contains("assigned none"),
        none.getMessage());

    // A CPU libtorch (the natives jar) on a GPU executor: the engine sees no GPU.
    IllegalStateException cpuTorch =
        assertThrows(
            IllegalStateException.class,
            () ->
                WorkerRuntime.chooseGpu(
                    true,
                    1,
                    List.of("0"),
                    null,
                    0,
                    "/home/spark/.djl.ai/pytorch/2.7.1-cpu-linux-x86_64",
                    "cpu"));
    assertTrue(
        cpuTorch.getMessage().contains("sees 0 GPU(s)")
            && cpuTorch.getMessage().contains("flavour cpu")
            && cpuTorch.getMessage().contains("--libtorch"),
        cpuTorch.getMessage());

    // The mapped ordinal must exist: CUDA_VISIBLE_DEVICES=2,3 shows 2 GPUs, ordinal 1 is the last.
    assertThrows(
        IllegalStateException.class,
        () -> WorkerRuntime.chooseGpu(true, 1, List.of("3"), null, 2, LIBTORCH, "cu128"));
    IllegalStateException unlisted =
        assertThrows(
            IllegalStateException.class,
            () -> WorkerRuntime.chooseGpu(true, 1, List.of("1"), "2,3", 2, LIBTORCH, "cu128"));
    assertTrue(unlisted.getMessage().contains("does not list it"), unlisted.getMessage());
  }

  @Test
  void theFlavourComesFromTheLibtorchDirectoryDjlUnpacked() {
    // PYTORCH_FLAVOR, when the environment sets it, wins; this JVM's test environment does not.
    if (System.getenv("PYTORCH_FLAVOR") == null) {
      assertEquals("cpu", WorkerRuntime.flavour("/root/.djl.ai/pytorch/2.7.1-cpu-linux-x86_64"));
      assertEquals("cu128", WorkerRuntime.flavour("/cache/pytorch/2.7.1-cu128-linux-x86_64/"));
      assertEquals("unknown", WorkerRuntime.flavour("/opt/libtorch/lib"));
    }
  }

  @Test
  void eachDeviceIsLoggedOncePerJvmWithEverythingAnOperatorNeeds() {
    List<String> lines = new ArrayList<>();
    Logger logger = (Logger) LogManager.getLogger(WorkerRuntime.class);
    AbstractAppender capture =
        new AbstractAppender("capture", null, null, true, Property.EMPTY_ARRAY) {
          @Override
          public void append(LogEvent event) {
            lines.add(event.getMessage().getFormattedMessage());
          }
        };
    capture.start();
    org.apache.logging.log4j.Level before = logger.getLevel();
    logger.addAppender(capture);
    logger.setLevel(org.apache.logging.log4j.Level.INFO);
    try {
      WorkerRuntime runtime = WorkerRuntime.fresh();
      ExecutorDevice gpu =
          new ExecutorDevice(
              "node7",
              "3",
              List.of("2"),
              "2,3",
              "gpu(0)",
              2,
              "/opt/libtorch/lib",
              "/opt/libtorch/lib",
              "cu128",
              "2.7.1");
      assertTrue(runtime.logOnce(gpu));
      assertFalse(runtime.logOnce(gpu), "the second task on the same device logs nothing");
      assertEquals(1, lines.size(), lines.toString());
      String line = lines.get(0);
      for (String part :
          List.of(
              "executor 3 on node7",
              "device gpu(0)",
              "Spark GPU addresses 2",
              "CUDA_VISIBLE_DEVICES '2,3'",
              "sees 2 GPU(s)",
              "libtorch /opt/libtorch/lib (PYTORCH_LIBRARY_PATH /opt/libtorch/lib)",
              "flavour cu128")) {
        assertTrue(line.contains(part), part + " missing from: " + line);
      }
    } finally {
      logger.removeAppender(capture);
      logger.setLevel(before);
    }
  }

  /**
   * The entry point tasks call, where Spark schedules no GPU: the CPU, which exclusive passes on.
   */
  @Test
  void tasksGetTheChosenDevice() {
    assertEquals(Device.cpu(), WorkerRuntime.deviceForTask(true));
    assertEquals(Device.cpu(), WorkerRuntime.deviceForTask(false));
    assertEquals(Device.cpu(), WorkerRuntime.get().exclusive(true, d -> d));
  }

  @Test
  void withoutGpusTheEngineLoadsOnTheCpu() {
    ExecutorDevice seen = WorkerRuntime.get().inspect(true);
    assertEquals("cpu()", seen.device());
    assertEquals(List.of(), seen.gpuAddresses());
    assertEquals(0, seen.engineGpus(), "no GPU on this machine");
    assertTrue(seen.libtorch() != null && !seen.libtorch().isBlank(), seen.toString());
  }
}
