package io.capprune.spark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import io.capprune.spark.data.Shard;
import io.capprune.spark.worker.TaskSettings;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The state kept on the executor ({@code cap.spark.update-on = executor}) trains as the driver path
 * does when that path is exact (fp32 on the wire, the update through DJL on the CPU): after two
 * epochs of movement pruning with CE + KD, the same weights, masks, scores and moments to the bit,
 * and at the epoch boundary the driver's hook sees the same state both ways (the executor's state
 * came back, and training went on from the republished one).
 */
class ResidentStepsTest {
  private static final int N = 48;
  private static final int BATCH = 16;
  private static final int EPOCHS = 2;
  private static final long SEED = 91L;
  private static final BertConfig MODEL = TestModels.dropoutFreePair();

  private static JavaSparkContext sc;
  private static JavaRDD<Shard> shards;

  @BeforeAll
  static void start() {
    sc =
        new JavaSparkContext(
            new SparkConf()
                .setMaster("local[2]")
                .setAppName("resident-steps")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set(DistributedTrainer.DRIVER_UPDATE, "cpu"));
    Shard shard =
        GeneratedShards.shard(
            new SplittableRandom(SEED), 0, 0, 1, N, MODEL.vocabSize(), MODEL.hiddenSize());
    shards = sc.parallelize(List.of(shard), 1).cache();
  }

  @AfterAll
  static void stop() {
    if (sc != null) {
      sc.close();
    }
  }

  private static DriverUpdate update() {
    long steps = (long) EPOCHS * N / BATCH;
    return new DriverUpdate(
        PruningConfig.of(
            PruningCriterion.MOVEMENT, new SparsitySchedule(1, 0, 0, steps, 1.0, 0.5), 0),
        new OptimizerConfig(
            1e-3,
            1e-2,
            0.01,
            0.9,
            0.999,
            1e-8,
            1.0,
            OptimizerConfig.unstructuredDefaults(1, steps).lrSchedule()));
  }

  /** Trains from the same start; returns the state and what the hook saw at each boundary. */
  private static TrainingState train(boolean onExecutor, List<TrainingState> seen) {
    DriverUpdate update = update();
    TrainingState state = update.initialState(new LinkedHashMap<>(BertInit.init(MODEL, SEED)));
    CapLossConfig loss =
        CapLossConfig.defaults().withExtraExamples(16).withBanks(Set.of()).withContrastive(false);
    TaskSettings ws = new TaskSettings(MODEL, 8, 0, 0, false, 1, false);
    DistributedTrainer trainer =
        new DistributedTrainer(sc, ws, loss, update, WirePrecision.FP32, onExecutor);
    DistributedTrainer.EpochHook hook =
        (epoch, st, current) -> {
          seen.add(st.copy());
          return new DistributedTrainer.EpochHook.Outcome(current, null);
        };
    trainer.train(
        shards,
        state,
        new DistributedTrainer.Plan("prune", EPOCHS, BATCH, N, SEED, 100, 2),
        hook,
        null);
    return state;
  }

  @Test
  void theExecutorsStateTrainsAsTheDriversExactly() {
    List<TrainingState> seenDriver = new ArrayList<>();
    List<TrainingState> seenExecutor = new ArrayList<>();
    TrainingState driver = train(false, seenDriver);
    TrainingState executor = train(true, seenExecutor);
    assertEquals((long) EPOCHS * N / BATCH, executor.step());
    // boundaries: before epoch 0, before epoch 1, after the last step
    assertEquals(3, seenExecutor.size());
    assertEquals(List.of(0L, 3L, 6L), seenExecutor.stream().map(TrainingState::step).toList());
    for (int b = 0; b < seenDriver.size(); b++) {
      assertSameState(seenDriver.get(b), seenExecutor.get(b), "boundary " + b);
    }
    assertSameState(driver, executor, "end");
    Map<String, HostTensor> initial = BertInit.init(MODEL, SEED);
    String first = driver.masks().keySet().iterator().next();
    assertNotEquals(
        0.0,
        distance(initial.get(first).data(), executor.weights().get(first).data()),
        "training moved the weights");
    float[] mask = executor.masks().get(first).data();
    double kept = 0;
    for (float m : mask) {
      kept += m;
    }
    assertTrue(kept < 0.6 * mask.length, "the masks pruned: kept " + kept + " of " + mask.length);
  }

  @Test
  void aStateTheExecutorDoesNotHoldIsRefusedWithTheStep() {
    TrainingState state = update().initialState(new LinkedHashMap<>(BertInit.init(MODEL, SEED)));
    TaskSettings ws = new TaskSettings(MODEL, 8, 0, 0, false, 1, false);
    var published = sc.broadcast(state);
    try {
      var task = new io.capprune.spark.worker.ResidentStateTask(ws, published, 5);
      SparkException e =
          assertThrows(SparkException.class, () -> shards.map(s -> task.run()).collect());
      assertTrue(
          e.getMessage().contains("expects the training state at step 5")
              && e.getMessage().contains("--resume"),
          e.getMessage());
    } finally {
      published.destroy(true);
    }
  }

  @Test
  void aStateAboveTheResultSizeLimitIsRefusedBeforeTheFirstStep() {
    TrainingState state = update().initialState(new LinkedHashMap<>(BertInit.init(MODEL, SEED)));
    long bytes = ResidentSteps.stateBytes(state);
    assertTrue(bytes > 0);
    var small = new SparkConf().set("spark.driver.maxResultSize", Long.toString(bytes / 2));
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class, () -> ResidentSteps.checkResultSize(small, state));
    assertTrue(e.getMessage().contains("spark.driver.maxResultSize"), e.getMessage());
    ResidentSteps.checkResultSize(sc.getConf(), state); // 1g by default: this state fits
  }

  private static void assertSameState(TrainingState a, TrainingState b, String where) {
    assertEquals(a.step(), b.step(), where);
    assertSame(a.weights(), b.weights(), where + ": weights");
    assertSame(a.masks(), b.masks(), where + ": masks");
    assertSame(a.scores(), b.scores(), where + ": scores");
    assertSame(a.expAvg(), b.expAvg(), where + ": first moments");
    assertSame(a.expAvgSq(), b.expAvgSq(), where + ": second moments");
  }

  private static void assertSame(
      Map<String, HostTensor> a, Map<String, HostTensor> b, String what) {
    assertEquals(a.keySet(), b.keySet(), what);
    for (String name : a.keySet()) {
      assertArrayEquals(a.get(name).data(), b.get(name).data(), what + " of " + name);
    }
  }

  private static double distance(float[] a, float[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += (a[i] - b[i]) * (double) (a[i] - b[i]);
    }
    return Math.sqrt(s);
  }
}
