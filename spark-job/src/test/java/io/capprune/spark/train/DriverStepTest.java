package io.capprune.spark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.bert.BertInit;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.ParameterLayout;
import io.capprune.core.testing.TestModels;
import io.capprune.spark.worker.WorkerRuntime;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.api.Test;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * The driver's update through DJL (here on the CPU, as on a driver GPU): a summed gradient that is
 * still one partition's fp16 buffer goes up encoded and is decoded on the device; the update is the
 * one the decoded floats give.
 */
class DriverStepTest {

  private static SparkConf conf() {
    return new SparkConf()
        .setMaster("local[1]")
        .setAppName("driver-step")
        .set("spark.ui.enabled", "false")
        .set("spark.driver.host", "127.0.0.1")
        .set(DistributedTrainer.DRIVER_UPDATE, "cpu");
  }

  private static DriverUpdate movement() {
    return new DriverUpdate(
        new PruningConfig(
            PruningCriterion.MOVEMENT,
            new SparsitySchedule(1, 0, 0, 10, 1.0, 0.2),
            false,
            0,
            true,
            0),
        new OptimizerConfig(0.01, 0.1, 0.01, 0.9, 0.999, 1e-8, 1, new LinearWarmupDecay(0, 10)));
  }

  @Test
  void anEncodedSumGivesTheUpdateOfItsDecodedFloats() {
    SparkConf conf = conf();
    Map<String, int[]> shapes = BertInit.shapes(TestModels.driverUpdateShape());
    DriverUpdate update = movement();
    SerializerInstance ser = new JavaSerializer(conf).newInstance();
    ClassTag<GradientBuffer> tag = ClassTag$.MODULE$.apply(GradientBuffer.class);
    try (JavaSparkContext sc = new JavaSparkContext(conf)) {
      TrainingState a = update.initialState(TestModels.randomWeights(shapes, 0.5, 1));
      TrainingState b = update.initialState(TestModels.randomWeights(shapes, 0.5, 1));
      ParameterLayout layout = ParameterLayout.of(DistributedTrainer.trainableWeights(a));
      try (DriverStep da = DriverStep.open(sc, update, a, layout, WirePrecision.FP16);
          DriverStep db = DriverStep.open(sc, update, b, layout, WirePrecision.FP16)) {
        for (long t = 0; t < 3; t++) {
          LinkedHashMap<String, HostTensor> g = TestModels.randomWeights(shapes, 0.3, 40 + t);
          Map<String, float[]> values = new LinkedHashMap<>();
          g.forEach((name, tensor) -> values.put(name, tensor.data()));
          float[] flat = layout.flatten(values);
          // one partition's buffer as it reaches the driver: still encoded
          GradientBuffer encoded =
              ser.deserialize(
                  ser.serialize(
                      GradientBuffer.of(flat, LossTerms.ZERO, 8, 0, WirePrecision.FP16), tag),
                  tag);
          GradientBuffer decoded = ser.deserialize(ser.serialize(encoded, tag), tag);
          decoded.gradient();
          assertNotNull(encoded.encodedOrNull());
          assertNull(decoded.encodedOrNull());
          da.apply(encoded);
          db.apply(decoded);
        }
      }
      for (String name : a.weights().keySet()) {
        assertArrayEquals(a.weights().get(name).data(), b.weights().get(name).data(), name);
      }
      for (String name : a.masks().keySet()) {
        assertArrayEquals(a.masks().get(name).data(), b.masks().get(name).data(), name);
      }
    }
  }

  /**
   * The device update's calls take the worker runtime's lock, the one the JVM's exit waits on:
   * while a task is inside it (a stand-in here, holding the lock), the driver's call waits, and it
   * runs once the task is out.
   */
  @Test
  void theDeviceUpdateWaitsWhileATaskHoldsTheRuntime() throws Exception {
    Map<String, int[]> shapes = BertInit.shapes(TestModels.driverUpdateShape());
    DriverUpdate update = movement();
    CountDownLatch inside = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try (JavaSparkContext sc = new JavaSparkContext(conf())) {
      TrainingState state = update.initialState(TestModels.randomWeights(shapes, 0.5, 1));
      ParameterLayout layout = ParameterLayout.of(DistributedTrainer.trainableWeights(state));
      MaskSet expected = MaskSet.of(state.masks());
      try (DriverStep step = DriverStep.open(sc, update, state, layout, WirePrecision.FP16)) {
        Future<Object> task =
            pool.submit(
                () ->
                    WorkerRuntime.get()
                        .alone(
                            () -> {
                              inside.countDown();
                              try {
                                release.await();
                              } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                              }
                              return null;
                            }));
        try {
          assertTrue(inside.await(30, TimeUnit.SECONDS));
          Future<MaskSet> masks = pool.submit(step::masks);
          assertThrows(
              TimeoutException.class,
              () -> masks.get(500, TimeUnit.MILLISECONDS),
              "the driver's device call ran while a task held the runtime");
          release.countDown();
          task.get(30, TimeUnit.SECONDS);
          assertTrue(expected.sameBits(masks.get(30, TimeUnit.SECONDS)));
        } finally {
          // before the step's close, which takes the same lock
          release.countDown();
        }
      }
    } finally {
      release.countDown();
      pool.shutdownNow();
    }
  }
}
