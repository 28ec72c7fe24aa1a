package io.capprune.spark.worker;

import ai.djl.Device;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * The one DJL worker of an executor JVM, kept across steps.
 *
 * <p>DJL allows one GradientCollector per JVM (a static flag in the PyTorch engine), so two tasks
 * of the same executor must never run a backward pass at once. The deployment runs one task per
 * executor ({@code spark.task.cpus} = executor cores); this lock enforces it anyway, so that local
 * mode with several task slots, or a mis-sized cluster, serialises instead of failing.
 */
public final class WorkerRuntime {
  private static volatile WorkerRuntime instance;

  private final ReentrantLock lock = new ReentrantLock(true);

  private WorkerRuntime() {}

  public static WorkerRuntime get() {
    WorkerRuntime w = instance;
    if (w == null) {
      synchronized (WorkerRuntime.class) {
        w = instance;
        if (w == null) {
          System.setProperty("ai.djl.offline", "true");
          w = new WorkerRuntime();
          instance = w;
        }
      }
    }
    return w;
  }

  /** Runs {@code work} alone in this JVM, on the device Spark assigned to the current task. */
  public <T> T exclusive(boolean useGpu, Function<Device, T> work) {
    lock.lock();
    try {
      return work.apply(deviceForTask(useGpu));
    } finally {
      lock.unlock();
    }
  }

  /**
   * The GPU Spark assigned to this task ({@code spark.task.resource.gpu.amount}), else the CPU.
   * Spark gives GPU addresses as strings: the ordinals the discovery script reported.
   */
  public static Device deviceForTask(boolean useGpu) {
    TaskContext tc = TaskContext.get();
    if (useGpu && tc != null) {
      Map<String, ResourceInformation> res = tc.resourcesJMap();
      ResourceInformation gpu = res.get("gpu");
      if (gpu != null && gpu.addresses().length > 0) {
        return Device.gpu(Integer.parseInt(gpu.addresses()[0].trim()));
      }
    }
    return Device.cpu();
  }
}
