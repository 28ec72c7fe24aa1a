package io.capprune.spark.train;

import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.prune.DeviceDriverUpdate;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.data.Shard;
import io.capprune.spark.report.EtaEstimator;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.ProgressLine;
import io.capprune.spark.report.StepRecord;
import io.capprune.spark.worker.GpuAddresses;
import io.capprune.spark.worker.TrainStepTask;
import io.capprune.spark.worker.TaskSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's training loop (design-brief decision 4). Each step is one Spark job: the driver
 * publishes the effective weights (a TorrentBroadcast), every partition computes the gradient of its
 * share of the global batch, treeAggregate sums them on the executors, and the driver clips,
 * applies AdamW, updates scores and masks ({@link DriverUpdate}) and moves on.
 *
 * <p>Where the driver's update runs ({@value #DRIVER_UPDATE}): {@code auto} (default) runs it on
 * the driver's GPU when it has one ({@code spark.driver.resource.gpu.amount}, or in client mode a
 * GPU the driver's host shows) through {@link DeviceDriverUpdate}, with the state resident there
 * and the broadcast built there; else on the heap ({@link DriverUpdate}), which on CPUs is the
 * faster of the two. {@code host}, {@code cpu} (the device update on the CPU) and {@code gpu}
 * (fails when there is none) choose one.
 *
 * <p>The global batch of step t is the t-th slice of a seeded permutation of the training set per
 * epoch, chosen by the driver; each partition takes the rows of it that it holds. So the same rows
 * form the same batch whatever the partitioning, and a resumed run sees the batches the
 * uninterrupted run would have seen.
 */
public final class DistributedTrainer {
  private static final Logger LOG = LoggerFactory.getLogger(DistributedTrainer.class);

  /** What happens at epoch boundaries (SnC slices, snapshots, dev evaluation). */
  public interface EpochHook {
    /**
     * Called before the first step of {@code epoch} (also when a resumed run starts inside it) and
     * once after the last step with {@code epoch == epochs}, before that step is logged.
     *
     * @return the shards to train on from now on (a new SnC slice makes new shards)
     */
    JavaRDD<Shard> atEpochBoundary(int epoch, TrainingState state, JavaRDD<Shard> shards,
        Map<String, Double>[] devOut);
  }

  /**
   * @param stage "finetune" or "prune": names Spark jobs and log lines
   * @param trainingSetSize N: global indices run over [0, N)
   */
  public record Plan(String stage, int epochs, int batchSize, long trainingSetSize, long seed,
      int logEverySteps, int aggregateDepth) {
    public int stepsPerEpoch() {
      return (int) ((trainingSetSize + batchSize - 1) / batchSize);
    }

    public long totalSteps() {
      return (long) stepsPerEpoch() * epochs;
    }
  }

  /** Spark conf key: auto, host, cpu or gpu (see the class comment). */
  public static final String DRIVER_UPDATE = "spark.capprune.driver.update";

  private final JavaSparkContext sc;
  private final TaskSettings worker;
  private final CapLossConfig loss;
  private final DriverUpdate update;
  private final WirePrecision precision;

  /** @param loss the CAP objective for the workers; null = task loss only (teacher fine-tuning) */
  public DistributedTrainer(JavaSparkContext sc, TaskSettings worker, CapLossConfig loss,
      DriverUpdate update) {
    this(sc, worker, loss, update, WirePrecision.FP32);
  }

  /** @param precision of weights and gradients on the wire (the driver's state stays fp32) */
  public DistributedTrainer(JavaSparkContext sc, TaskSettings worker, CapLossConfig loss,
      DriverUpdate update, WirePrecision precision) {
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
  public TrainingState train(JavaRDD<Shard> shards, TrainingState state, Plan plan, EpochHook hook,
      MetricsLog metrics) {
    long total = plan.totalSteps();
    int perEpoch = plan.stepsPerEpoch();
    Broadcast<LinkedHashMap<String, HostTensor>> frozen = sc.broadcast(frozenWeights(state));
    java.util.List<String> trainableNames = new java.util.ArrayList<>();
    LinkedHashMap<String, HostTensor> trainableWeights = new LinkedHashMap<>();
    for (Map.Entry<String, HostTensor> e : state.weights().entrySet()) {
      if (!state.frozen().contains(e.getKey())) {
        trainableNames.add(e.getKey());
        trainableWeights.put(e.getKey(), e.getValue());
      }
    }
    ParameterLayout layout = ParameterLayout.of(trainableWeights);
    // The masks travel as bits, and only when they change; weights travel as their kept entries.
    MaskSet masks = null;
    Broadcast<MaskSet> masksBroadcast = null;
    maskBroadcasts = 0;
    DeviceDriverUpdate onDevice = driverUpdateDevice();
    EtaEstimator eta = new EtaEstimator(20);
    long startNanos = System.nanoTime();
    long startStep = state.step();
    long[] permutation = null;
    int permutationEpoch = -1;
    LossTerms termSums = LossTerms.ZERO;
    long examplesSinceLog = 0;
    long lastLogNanos = startNanos;
    // Where the time of the logged steps went: broadcast + job (workers + exchange) + driver update.
    double publishSecs = 0;
    double jobSecs = 0;
    double workerSecs = 0;
    double workerTotalSecs = 0;
    double updateSecs = 0;
    @SuppressWarnings("unchecked")
    Map<String, Double>[] dev = new Map[1];
    try {
      for (long step = state.step(); step < total; step++) {
        int epoch = (int) (step / perEpoch);
        int within = (int) (step % perEpoch);
        if (within == 0 || step == startStep) {
          if (hook != null) {
            // The hook may write a snapshot; a run resumed from it keeps only the records the file
            // holds up to its step, so they must be on storage before it (a killed driver loses
            // the rest of its buffer).
            if (metrics != null && step > startStep) {
              metrics.flush();
            }
            shards = hook.atEpochBoundary(epoch, state, shards, dev);
            // the hook saw the state on the host; it continues from there (uploaded again)
            state.releaseDevice();
          }
        }
        if (permutationEpoch != epoch) {
          permutation = permutation(plan.trainingSetSize(), plan.seed(), epoch);
          permutationEpoch = epoch;
        }
        int from = within * plan.batchSize();
        int to = (int) Math.min(plan.trainingSetSize(), from + (long) plan.batchSize());
        long[] batch = java.util.Arrays.copyOfRange(permutation, from, to);

        long tPublish = System.nanoTime();
        MaskSet current = onDevice != null ? onDevice.maskSet(state) : MaskSet.of(state.masks());
        if (!current.sameBits(masks)) {
          if (masksBroadcast != null) {
            masksBroadcast.destroy();
          }
          masks = current;
          masksBroadcast = sc.broadcast(masks);
          maskBroadcasts++;
        }
        PackedWeights packed = onDevice != null
            ? onDevice.pack(state, trainableNames, masks, precision)
            : PackedWeights.pack(state.weights(), state.masks(), trainableNames, masks, precision);
        Broadcast<PackedWeights> weights = sc.broadcast(packed);
        long tJob = System.nanoTime();
        TrainStepTask task = new TrainStepTask(worker, loss, weights, masksBroadcast, frozen, batch,
            step, plan.seed(), layout);
        sc.setJobDescription(plan.stage() + " step " + (step + 1) + "/" + total + " (epoch "
            + (epoch + 1) + ")");
        GradientBuffer g = shards.treeAggregate(GradientBuffer.empty(),
            (buf, shard) -> buf.add(task.run(shard)), GradientBuffer::add, plan.aggregateDepth());
        long tJobEnd = System.nanoTime();
        weights.destroy();
        if (g.isEmpty() || g.examples() != batch.length) {
          throw new IllegalStateException(plan.stage() + " step " + step + ": the partitions computed "
              + (g.isEmpty() ? 0 : g.examples()) + " examples of a batch of " + batch.length
              + " (the shards do not cover the training set)");
        }
        long tUpdate = System.nanoTime();
        UpdateSummary s = onDevice != null ? onDevice.applyFlat(state, g.gradient())
            : update.apply(state, layout.unflatten(g.gradient()));
        updateSecs += (System.nanoTime() - tUpdate) / 1e9;
        publishSecs += (tJob - tPublish) / 1e9;
        jobSecs += (tJobEnd - tJob) / 1e9;
        workerSecs += g.workerSeconds();
        workerTotalSecs += g.workerSecondsTotal();
        termSums = termSums.plus(g.terms());
        examplesSinceLog += g.examples();

        long done = step + 1;
        double elapsed = (System.nanoTime() - startNanos) / 1e9;
        eta.observe(done - startStep, elapsed);
        boolean last = done == total;
        if (last && hook != null) {
          // The end of the last epoch is a boundary too (final snapshot, final dev metrics); it
          // runs before the last record is logged so that record carries them.
          shards = hook.atEpochBoundary(plan.epochs(), state, shards, dev);
        }
        if (done % plan.logEverySteps() == 0 || last) {
          long n = done % plan.logEverySteps() == 0 ? plan.logEverySteps() : done % plan.logEverySteps();
          n = Math.min(n, done - startStep);
          double secs = (System.nanoTime() - lastLogNanos) / 1e9;
          LossTerms mean = termSums.dividedBy(n);
          StepRecord.Builder r = StepRecord.builder(done, total)
              .epoch(epoch + 1)
              .loss(mean.total() + s.regularizerLoss())
              .ce(mean.ce())
              .learningRate(s.learningRate())
              .gradNorm(s.gradNorm())
              .sparsity(s.sparsity().sparsity())
              .threshold(s.threshold())
              .examplesPerSecond(examplesSinceLog / Math.max(secs, 1e-9))
              .secondsElapsed(elapsed)
              .secondsLeft(eta.secondsLeft(total - startStep));
          if (loss != null) {
            r.kd(mean.kd());
            if (loss.contrastive()) {
              r.prc(mean.prc()).snc(mean.snc()).fic(mean.fic());
            }
          }
          if (s.lambda() > 0) {
            r.regulariser(s.regularizerLoss());
          }
          if (dev[0] != null) {
            r.dev(dev[0]);
            dev[0] = null;
          }
          StepRecord record = r.build();
          LOG.info("{} {} | s/step: workers {} exchange {} publish {} update {}", plan.stage(),
              ProgressLine.format(record), fmt(workerSecs / n), fmt((jobSecs - workerSecs) / n),
              fmt(publishSecs / n), fmt(updateSecs / n));
          lastTiming = new double[] {publishSecs / n, workerSecs / n, (jobSecs - workerSecs) / n,
              updateSecs / n, workerTotalSecs / n, jobSecs / n};
          publishSecs = 0;
          jobSecs = 0;
          workerSecs = 0;
          workerTotalSecs = 0;
          updateSecs = 0;
          if (metrics != null) {
            metrics.append(record);
          }
          termSums = LossTerms.ZERO;
          examplesSinceLog = 0;
          lastLogNanos = System.nanoTime();
        }
      }
      if (metrics != null) {
        metrics.flush();
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write metrics: " + e.getMessage(), e);
    } finally {
      if (onDevice != null) {
        // the state goes back to the host tensors, the device's memory is freed
        onDevice.close();
      }
      frozen.destroy();
      if (masksBroadcast != null) {
        masksBroadcast.destroy();
      }
    }
    return state;
  }

  /**
   * The device update for this driver ({@value #DRIVER_UPDATE}), or null for the heap update.
   * The driver's GPU: the one Spark assigned ({@code spark.driver.resource.gpu.amount}, mapped
   * through CUDA_VISIBLE_DEVICES), else in client mode GPU 0 when CUDA shows one and the PyTorch
   * engine can use it.
   */
  private DeviceDriverUpdate driverUpdateDevice() {
    String mode = sc.getConf().get(DRIVER_UPDATE, "auto").trim().toLowerCase(java.util.Locale.ROOT);
    switch (mode) {
      case "host":
        return null;
      case "cpu":
        LOG.info("driver update: through DJL on the CPU ({}=cpu)", DRIVER_UPDATE);
        return new DeviceDriverUpdate(update.pruning(), update.optimizer(), ai.djl.Device.cpu());
      case "auto":
      case "gpu":
        break;
      default:
        throw new IllegalArgumentException(DRIVER_UPDATE + ": expected auto, host, cpu or gpu, got '"
            + mode + "'");
    }
    Integer ordinal = null;
    String why;
    org.apache.spark.resource.ResourceInformation gpus = sc.resources().get("gpu");
    if (gpus != null && gpus.addresses().length > 0) {
      ordinal = GpuAddresses.cudaOrdinal(gpus.addresses()[0], System.getenv("CUDA_VISIBLE_DEVICES"));
      why = "Spark assigned the driver GPU " + gpus.addresses()[0];
    } else if (!"cluster".equals(sc.getConf().get("spark.submit.deployMode", "client"))
        && ai.djl.util.cuda.CudaUtils.getGpuCount() > 0) {
      ordinal = 0;
      why = "the driver's host shows " + ai.djl.util.cuda.CudaUtils.getGpuCount() + " GPU(s)";
    } else {
      why = "the driver has no GPU";
    }
    if (ordinal != null) {
      int engineGpus;
      try {
        engineGpus = ai.djl.engine.Engine.getEngine("PyTorch").getGpuCount();
      } catch (RuntimeException | UnsatisfiedLinkError e) {
        engineGpus = 0;
        why += " (the PyTorch engine did not load: " + e.getMessage() + ")";
      }
      if (engineGpus > ordinal) {
        LOG.info("driver update: on gpu({}) ({})", ordinal, why);
        return new DeviceDriverUpdate(update.pruning(), update.optimizer(), ai.djl.Device.gpu(ordinal));
      }
      why += ", but the PyTorch engine sees " + engineGpus + " GPU(s) (a CPU libtorch?)";
    }
    if (mode.equals("gpu")) {
      throw new IllegalStateException(DRIVER_UPDATE + "=gpu: " + why);
    }
    LOG.info("driver update: on the heap ({})", why);
    return null;
  }

  /** Global indices [0, n) in the order of a seeded shuffle for this epoch. */
  static long[] permutation(long n, long seed, int epoch) {
    long[] p = new long[Math.toIntExact(n)];
    for (int i = 0; i < p.length; i++) {
      p[i] = i;
    }
    SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch);
    for (int i = p.length - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      long t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  private double[] lastTiming;
  private int maskBroadcasts;

  /** How many times the last {@link #train} call broadcast the masks (once plus once per change). */
  public int maskBroadcasts() {
    return maskBroadcasts;
  }

  /**
   * Mean seconds per step over the last logged window: publishing the weights (broadcast),
   * the slowest worker's compute, the rest of the Spark job (scheduling, serialisation,
   * aggregation), and the driver update; then all partitions' compute added up and the whole
   * Spark job (workers + exchange). Null before the first log line.
   */
  public double[] lastTiming() {
    return lastTiming;
  }

  private static String fmt(double v) {
    return String.format("%.2f", v);
  }

  private static LinkedHashMap<String, HostTensor> frozenWeights(TrainingState state) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    for (String name : state.frozen()) {
      out.put(name, state.weights().get(name));
    }
    return out;
  }
}
