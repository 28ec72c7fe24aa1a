package io.capprune.spark.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;

/**
 * DJL's PyTorch engine runs inside Spark tasks, offline, with autograd, two task slots in one JVM.
 */
class DjlInSparkSmokeTest {
  @Test
  void gradientsInsideSparkTasks() {
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName("djl-smoke")
            .set("spark.ui.enabled", "false")
            .set("spark.driver.host", "127.0.0.1");
    try (JavaSparkContext sc = new JavaSparkContext(conf)) {
      List<Float> grads =
          sc.parallelize(List.of(1f, 2f, 3f, 4f), 4)
              .map(
                  x ->
                      WorkerRuntime.get()
                          .exclusive(
                              false,
                              device -> {
                                try (NDManager m = NDManager.newBaseManager(device);
                                    GradientCollector gc =
                                        Engine.getInstance().newGradientCollector()) {
                                  NDArray a = m.create(new float[] {x});
                                  a.setRequiresGradient(true);
                                  gc.backward(a.mul(a).sum());
                                  return a.getGradient().getFloat(0);
                                }
                              }))
              .collect();
      assertArrayEquals(new Object[] {2f, 4f, 6f, 8f}, grads.toArray());
    }
  }
}
