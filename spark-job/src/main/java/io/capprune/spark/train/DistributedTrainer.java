package io.capprune.spark.train;

import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.prune.DeviceDriverUpdate;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.ParameterLayout;
import io.capprune.spark.data.Shard;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.worker.TaskSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's training loop (docs/decisions.md decision 4). Each step is one Spark job: the driver
 * publishes the effective weights (a TorrentBroadcast), every partition computes the gradient of
 * its share of the global batch, treeAggregate sums them on the executors ({@link
 * GradientExchange}), and the driver clips, applies AdamW, updates scores and masks ({@link
 * DriverStep}) and moves on; every few steps it logs its progress ({@link TrainingProgress}).
 *
 * <p>Where the driver's update runs ({@value #DRIVER_UPDATE}): {@code auto} (default) runs it on
 * the driver's GPU when it has one ({@code spark.driver.resource.gpu.amount}, or in client mode a
 * GPU the driver's host shows) through {@link DeviceDriverUpdate}, with the state resident there
 * and the broadcast built there; else on the heap ({@link DriverUpdate}), which on CPUs is the
 * faster of the two. {@code host}, {@code cpu} (the device update on the CPU) and {@code gpu}
 * (fails when there is none) choose one.
 *
 * <p>The global batch of step t is the t-th slice of a seeded permutation of the training set per
 * epoch, chosen by the driver ({@link GlobalBatches}); each partition takes the rows of it that it
 * holds. So the same rows form the same batch whatever the partitioning, and a resumed run sees the
 * batches the uninterrupted run would have seen.
 *
 * <p>Where the state lives between steps: on the driver (default, {@link DriverSteps}), or, with
 * {@code updateOnExecutor} ({@code cap.spark.update-on = executor}) and one partition, on the
 * executor next to its worker ({@link ResidentSteps}), which applies the update itself and sends
 * back only the loss terms; the driver takes the state back at epoch boundaries and at the end.
 */
public final class DistributedTrainer {

  /** What happens at epoch boundaries (SnC slices, snapshots, dev evaluation). */
  public interface EpochHook {
    /**
     * Called before the first step of {@code epoch} (also when a resumed run starts inside it) and
     * once after the last step with {@code epoch == epochs}, before that step is logged.
     *
     * @return the shards to train on from now on (a new SnC slice makes new shards), and the dev
     *     metrics if the hook evaluated the model
     */
    Outcome atEpochBoundary(int epoch, TrainingState state, JavaRDD<Shard> shards);

    /**
     * @param dev the dev metrics of an evaluation at this boundary, else null; the next progress
     *     record carries them
     */
    record Outcome(JavaRDD<Shard> shards, Map<String, Double> dev) {}
  }

  /**
   * @param stage "finetune" or "prune": names Spark jobs and log lines
   * @param trainingSetSize N: global indices run over [0, N)
   */
  public record Plan(
      String stage,
      int epochs,
      int batchSize,
      long trainingSetSize,
      long seed,
      int logEverySteps,
      int aggregateDepth) {
    public int stepsPerEpoch() {
      return (int) ((trainingSetSize + batchSize - 1) / batchSize);
    }

    public long totalSteps() {
      return (long) stepsPerEpoch() * epochs;
    }

    /** The epoch step {@code step} belongs to, counted from 0. */
    int epochOf(long step) {
      return (int) (step / stepsPerEpoch());
    }
  }

  /** How a step turns the batch into the next state, and where that state lives meanwhile. */
  interface Steps extends AutoCloseable {
    /** Step {@code step} on the rows {@code batch}: the gradient, and the update applied. */
    StepOutcome run(JavaRDD<Shard> shards, TrainingState state, long step, long[] batch);

    /** Before the driver reads {@code state} (at {@code step}): it is brought up to date. */
    void toDriver(TrainingState state, long step);

    /** After the driver may have changed the state (an epoch boundary's hook ran). */
    void fromDriver();

    /** How many times the masks were broadcast. */
    int maskBroadcasts();

    @Override
    void close();
  }

  /**
   * @param terms the batch-mean loss terms
   * @param examples rows computed (the global batch)
   * @param summary the update's figures
   */
  record StepOutcome(LossTerms terms, long examples, UpdateSummary summary, StepTimings timings) {}

  /** Spark conf key: auto, host, cpu or gpu (see the class comment). */
  public static final String DRIVER_UPDATE = "spark.capprune.driver.update";

  private static final Logger LOG = LoggerFactory.getLogger(DistributedTrainer.class);

  private final JavaSparkContext sc;
  private final TaskSettings worker;
  private final CapLossConfig loss;
  private final DriverUpdate update;
  private final WirePrecision precision;
  private final boolean updateOnExecutor;
  private StepTimings lastTiming;
  private int maskBroadcasts;

  /**
   * @param loss the CAP objective for the workers; null = task loss only (teacher fine-tuning)
   */
  public DistributedTrainer(
      JavaSparkContext sc, TaskSettings worker, CapLossConfig loss, DriverUpdate update) {
    this(sc, worker, loss, update, WirePrecision.FP32);
  }

  /**
   * @param precision of weights and gradients on the wire (the driver's state stays fp32)
   */
  public DistributedTrainer(
      JavaSparkContext sc,
      TaskSettings worker,
      CapLossConfig loss,
      DriverUpdate update,
      WirePrecision precision) {
    this(sc, worker, loss, update, precision, false);
  }

  /**
   * @param precision of weights and gradients on the wire (the driver's state stays fp32)
   * @param updateOnExecutor keep the state on the (one) executor and update it there ({@link
   *     ResidentSteps}); nothing goes over the wire per step then, whatever {@code precision}
   */
  public DistributedTrainer(
      JavaSparkContext sc,
      TaskSettings worker,
      CapLossConfig loss,
      DriverUpdate update,
      WirePrecision precision,
      boolean updateOnExecutor) {
    this.updateOnExecutor = updateOnExecutor;
    this.sc = sc;
    this.worker = worker;
    this.loss = loss;
    this.update = update;
    this.precision = precision;
  }

  /**
   * Trains {@code state} in place from its current step to the end of the plan.
   *
   * @param metrics where a record per logged step goes; may be null
   */
  public TrainingState train(
      JavaRDD<Shard> shards, TrainingState state, Plan plan, EpochHook hook, MetricsLog metrics) {
    long startStep = state.step();
    ParameterLayout layout = ParameterLayout.of(trainableWeights(state));
    GlobalBatches batches = new GlobalBatches(plan);
    TrainingProgress progress = new TrainingProgress(plan, loss, startStep, metrics);
    try (Steps steps = steps(state, layout, plan)) {
      for (long step = startStep; step < plan.totalSteps(); step++) {
        int epoch = plan.epochOf(step);
        if (hook != null && (step % plan.stepsPerEpoch() == 0 || step == startStep)) {
          // The hook may write a snapshot; a run resumed from it keeps only the records the file
          // holds up to its step, so they must be on storage before it (a killed driver loses
          // the rest of its buffer).
          if (step > startStep) {
            progress.flush();
          }
          steps.toDriver(state, step);
          shards = atBoundary(hook, epoch, state, shards, progress);
          // the hook saw the state on the host; it continues from there (uploaded again)
          state.releaseDevice();
          steps.fromDriver();
        }
        StepOutcome o = steps.run(shards, state, step, batches.of(step));
        long done = step + 1;
        progress.stepDone(done, o.terms(), o.examples(), o.timings());
        if (done == plan.totalSteps() && hook != null) {
          // The end of the last epoch is a boundary too (final snapshot, final dev metrics); it
          // runs before the last record is logged so that record carries them.
          steps.toDriver(state, done);
          shards = atBoundary(hook, plan.epochs(), state, shards, progress);
        }
        progress.recordIfDue(done, epoch, o.summary());
      }
      steps.toDriver(state, plan.totalSteps());
      maskBroadcasts = steps.maskBroadcasts();
      if (progress.lastTiming() != null) {
        lastTiming = progress.lastTiming();
      }
      progress.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write metrics: " + e.getMessage(), e);
    }
    return state;
  }

  private Steps steps(TrainingState state, ParameterLayout layout, Plan plan) {
    if (updateOnExecutor) {
      ResidentSteps.checkResultSize(sc.getConf(), state);
      LOG.info(
          "{}: the training state ({} MB) stays on the executor's device between epoch"
              + " boundaries, where the update runs (cap.spark.update-on = executor)",
          plan.stage(),
          ResidentSteps.stateBytes(state) / 1_000_000);
      return new ResidentSteps(sc, worker, loss, update, frozenWeights(state), plan);
    }
    GradientExchange exchange =
        new GradientExchange(sc, worker, loss, frozenWeights(state), layout, plan);
    try {
      return new DriverSteps(exchange, DriverStep.open(sc, update, state, layout, precision));
    } catch (RuntimeException e) {
      exchange.close();
      throw e;
    }
  }

  /** "prune step 3/100 (epoch 1)": the Spark job's description, as the UI lists it. */
  static String jobDescription(Plan plan, long step) {
    return plan.stage()
        + " step "
        + (step + 1)
        + "/"
        + plan.totalSteps()
        + " (epoch "
        + (plan.epochOf(step) + 1)
        + ")";
  }

  private static JavaRDD<Shard> atBoundary(
      EpochHook hook,
      int epoch,
      TrainingState state,
      JavaRDD<Shard> shards,
      TrainingProgress progress) {
    EpochHook.Outcome outcome = hook.atEpochBoundary(epoch, state, shards);
    progress.devMetrics(outcome.dev());
    return outcome.shards();
  }

  /**
   * How many times the last {@link #train} call broadcast the masks (once plus once per change).
   */
  public int maskBroadcasts() {
    return maskBroadcasts;
  }

  /**
   * Mean seconds per step over the last logged window of the last {@link #train} call: the driver's
   * publication, the workers' compute, the rest of the Spark job and the driver's update. Null
   * before the first log line.
   */
  public StepTimings lastTiming() {
    return lastTiming;
  }

  static LinkedHashMap<String, HostTensor> trainableWeights(TrainingState state) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    state
        .weights()
        .forEach(
            (name, w) -> {
              if (!state.frozen().contains(name)) {
                out.put(name, w);
              }
            });
    return out;
  }

  private static LinkedHashMap<String, HostTensor> frozenWeights(TrainingState state) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    for (String name : state.frozen()) {
      out.put(name, state.weights().get(name));
    }
    return out;
  }
}
