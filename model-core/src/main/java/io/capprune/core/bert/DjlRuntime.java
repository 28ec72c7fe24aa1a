package io.capprune.core.bert;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place that prepares DJL in a JVM: offline (otherwise DJL downloads natives and calls a
 * cloud metadata address when the engine loads), the PyTorch engine, its thread count, its RNG seed
 * (dropout masks) and the device.
 */
public final class DjlRuntime {

  private static final Logger LOG = LoggerFactory.getLogger(DjlRuntime.class);
  public static final String ENGINE = "PyTorch";

  private DjlRuntime() {}

  /**
   * Sets {@code ai.djl.offline=true} and {@code ai.djl.default_engine=PyTorch} unless already set.
   * Must run before anything touches {@link Engine}: DJL reads them when the engine loads.
   */
  public static void configureOffline() {
    setIfUnset("ai.djl.offline", "true");
    setIfUnset("ai.djl.default_engine", ENGINE);
  }

  /**
   * Configures DJL offline and loads the PyTorch engine with {@code numThreads} intra-op threads
   * (the cores this task owns). Later calls change the intra-op thread count only: PyTorch fixes
   * the inter-op pool when it first runs parallel work.
   */
  public static synchronized Engine start(int numThreads) {
    if (numThreads <= 0) {
      throw new IllegalArgumentException("numThreads must be > 0, got " + numThreads);
    }
    configureOffline();
    setIfUnset("ai.djl.pytorch.num_threads", Integer.toString(numThreads));
    setIfUnset("ai.djl.pytorch.num_interop_threads", "1");
    Engine engine = Engine.getEngine(ENGINE);
    JniUtils.setNumThreads(numThreads);
    return engine;
  }

  /** The current intra-op thread count of PyTorch. */
  public static int numThreads() {
    return JniUtils.getNumThreads();
  }

  /** Seeds the engine's RNG (dropout). Same seed, same thread count: same dropout masks. */
  public static void seed(int seed) {
    Engine.getEngine(ENGINE).setRandomSeed(seed);
  }

  /**
   * GPU {@code gpuIndex} when it is asked for ({@code >= 0}) and present, else the CPU. On a
   * cluster the index is the GPU that Spark assigned to the task.
   */
  public static Device device(int gpuIndex) {
    if (gpuIndex < 0) {
      return Device.cpu();
    }
    int count = Engine.getEngine(ENGINE).getGpuCount();
    if (gpuIndex < count) {
      return Device.gpu(gpuIndex);
    }
    LOG.warn("GPU {} requested but the engine sees {} GPU(s); using the CPU", gpuIndex, count);
    return Device.cpu();
  }

  private static void setIfUnset(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }
}
