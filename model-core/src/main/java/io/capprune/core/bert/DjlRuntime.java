package io.capprune.core.bert;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * The one place that prepares DJL in a JVM: offline (otherwise DJL downloads natives and calls a
 * cloud metadata address when the engine loads), the PyTorch engine, its thread count and its RNG
 * seed (dropout masks). The device of a task is chosen in spark-job ({@code WorkerRuntime}), from
 * the GPU Spark assigned to it.
 */
public final class DjlRuntime {

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

  private static void setIfUnset(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }
}
