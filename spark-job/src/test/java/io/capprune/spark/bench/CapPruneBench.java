package io.capprune.spark.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInit;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Targets;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.ParameterNames;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.tensor.ParameterLayout;
import io.capprune.core.testing.TestModels;
import io.capprune.core.text.BertTokenizer;
import io.capprune.core.train.EncodedExample;
import io.capprune.core.train.MicroBatch;
import io.capprune.core.train.TokenBatch;
import io.capprune.core.train.WorkerStep;
import io.capprune.spark.data.Shard;
import io.capprune.spark.train.DistributedTrainer;
import io.capprune.spark.train.GradientBuffer;
import io.capprune.spark.train.StepTimings;
import io.capprune.spark.worker.TaskSettings;
import io.capprune.spark.worker.TrainStepTask;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.io.LZ4CompressionCodec;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.serializer.SerializationStream;

/**
 * The performance figures of issue 8, printed as a table: what a CAP step costs on a worker, what
 * the driver update costs, what a step moves between driver and executors and how much of it is
 * outside the workers' compute, whether an executor's memory stays flat, and what dynamic padding
 * saves on SST-2. Not part of the test suite (figures depend on the machine); run it with {@code
 * bin/cap-prune-bench} (see docs/performance.md).
 *
 * <p>Sections (arguments; default all): {@code memory pad worker driver exchange}. Options: {@code
 * --quick} (MiniLM size only in the worker section, fewer repetitions), {@code --data DIR} (holds
 * glue/SST-2 and models/, default ../shared/data), {@code --threads N} (PyTorch intra-op threads,
 * default all cores).
 */
public final class CapPruneBench {
  private static final long SEED = 8L;
  private static final int BATCH = 32;
  private static final int SEQ = 128;

  private final List<String[]> rows = new ArrayList<>();
  private final boolean quick;
  private final Path data;
  private JavaSparkContext sc;

  private CapPruneBench(boolean quick, Path data) {
    this.quick = quick;
    this.data = data;
  }

  public static void main(String[] args) throws Exception {
    List<String> sections = new ArrayList<>();
    boolean quick = false;
    int threads = Runtime.getRuntime().availableProcessors();
    Path data = Path.of(System.getProperty("capprune.home", "."), "..", "shared", "data");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--quick" -> quick = true;
        case "--data" -> data = Path.of(args[++i]);
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        default -> sections.add(args[i]);
      }
    }
    if (sections.isEmpty()) {
      // memory first: its RSS figures are only meaningful in a JVM that has not run BERT-base yet
      sections = List.of("memory", "pad", "worker", "exchange", "driver");
    }
    CapPruneBench b = new CapPruneBench(quick, data.normalize());
    System.out.printf(
        "cap-prune bench: %d cores, max heap %d MB, load average at start %.2f%n",
        Runtime.getRuntime().availableProcessors(), Runtime.getRuntime().maxMemory() >> 20, load());
    DjlRuntime.configureOffline();
    // PyTorch intra-op threads. On an oversubscribed machine every op's thread barrier waits for a
    // descheduled thread, which makes a tiny model's steps 10-50x slower: --threads 1 avoids it.
    DjlRuntime.start(threads);
    System.out.println("PyTorch intra-op threads: " + threads);
    try {
      for (String s : sections) {
        switch (s) {
          case "memory" -> b.memory();
          case "pad" -> b.padding();
          case "worker" -> b.workerSteps();
          case "exchange" -> b.exchange();
          case "driver" -> b.driverUpdate();
          default ->
              throw new IllegalArgumentException(
                  "unknown section '" + s + "' (memory, pad, worker, exchange, driver)");
        }
      }
    } finally {
      if (b.sc != null) {
        b.sc.close();
      }
    }
    System.out.printf("%n| figure | value | notes |%n|---|---|---|%n");
    for (String[] r : b.rows) {
      System.out.printf("| %s | %s | %s |%n", r[0], r[1], r[2]);
    }
    System.out.printf("load average at end %.2f%n", load());
  }

  private void row(String figure, String value, String notes) {
    rows.add(new String[] {figure, value, notes});
    System.out.printf("  %s: %s (%s)%n", figure, value, notes);
  }

  private static double load() {
    return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
  }

  // ---- models and inputs ----

  static BertConfig miniLm() {
    return TestModels.miniLmShape();
  }

  static BertConfig bertBase() {
    return BertConfig.builder().build();
  }

  static BertConfig tiny() {
    return BertConfig.builder()
        .vocabSize(200)
        .hiddenSize(64)
        .numHiddenLayers(2)
        .numAttentionHeads(2)
        .intermediateSize(128)
        .maxPositionEmbeddings(64)
        .build();
  }

  /** Random token ids of the given lengths (first token [CLS]-like id 101). */
  static List<EncodedExample> randomExamples(int n, int vocab, int minLen, int maxLen, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<EncodedExample> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = minLen + r.nextInt(maxLen - minLen + 1);
      int[] ids = new int[len];
      for (int t = 0; t < len; t++) {
        ids[t] = t == 0 ? Math.min(101, vocab - 1) : 1 + r.nextInt(vocab - 1);
      }
      // label i % 2, as in the benchmark banks, whose row i stands for example i
      out.add(new EncodedExample(i, ids, new byte[len], i % 2, Float.NaN));
    }
    return out;
  }

  /** A bank for these rows with teacher logits and PRE, FINE and one SNAP slice of unit vectors. */
  static RepresentationBank bank(
      long[] index, int[] labels, int hidden, long trainingSetSize, long seed) {
    return io.capprune.core.bench.WorkerStepBenchmark.bank(
        index, labels, hidden, trainingSetSize, seed);
  }

  static MicroBatch microBatch(List<EncodedExample> examples, int[] rows, int padTo) {
    return microBatch(examples, rows, padTo, rows);
  }

  /**
   * @param bankRows the bank rows standing for {@code rows}
   */
  static MicroBatch microBatch(
      List<EncodedExample> examples, int[] rows, int padTo, int[] bankRows) {
    List<int[]> ids = new ArrayList<>();
    List<byte[]> types = new ArrayList<>();
    int[] labels = new int[rows.length];
    for (int i = 0; i < rows.length; i++) {
      EncodedExample e = examples.get(rows[i]);
      ids.add(e.inputIds());
      types.add(e.tokenTypeIds());
      labels[i] = e.label();
    }
    return new MicroBatch(TokenBatch.pad(ids, types, padTo, 0), Targets.classes(labels), bankRows);
  }

  private static LinkedHashMap<String, HostTensor> split(
      Map<String, HostTensor> all, boolean frozen) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    all.forEach(
        (k, v) -> {
          if (ParameterNames.isEmbedding(k) == frozen) {
            out.put(k, v);
          }
        });
    return out;
  }

  private static long numel(Map<String, HostTensor> m) {
    return m.values().stream().mapToLong(HostTensor::numel).sum();
  }

  /** One worker with a model, its frozen embeddings on the device and a bank, for timing steps. */
  private static final class Worker implements AutoCloseable {
    final NDManager manager = NDManager.newBaseManager(Device.cpu());
    final Map<String, NDArray> frozen;
    final LinkedHashMap<String, HostTensor> trainable;
    final BertConfig config;
    final RepresentationBank bank;

    Worker(BertConfig config, int bankRows) {
      this.config = config;
      Map<String, HostTensor> all = BertInit.init(config, SEED);
      this.frozen = NDArrays.toNDArrays(manager, split(all, true), DataType.FLOAT32);
      this.trainable = split(all, false);
      long[] index = new long[bankRows];
      int[] labels = new int[bankRows];
      for (int i = 0; i < bankRows; i++) {
        index[i] = i;
        labels[i] = i % 2;
      }
      this.bank = bank(index, labels, config.hiddenSize(), bankRows, SEED);
      this.deviceBank = DeviceBank.upload(manager, bank);
    }

    /** The bank stays on the worker's device between steps, as in the job. */
    final DeviceBank deviceBank;

    double lastCpu;

    /**
     * Wall seconds of one step: effective weights to leaves, forward, backward, gradients to the
     * host; {@link #lastCpu} gets the process CPU seconds of it (all threads), which a busy machine
     * inflates far less than wall time.
     */
    double step(CapLoss loss, MicroBatch mb, long seed) {
      WorkerStep ws = new WorkerStep(new BertForSequenceClassification(config), loss);
      long c0 = processCpuNanos();
      long t0 = System.nanoTime();
      try (NDManager scope = manager.newSubManager()) {
        ws.run(
            scope,
            frozen,
            FlatParameters.upload(scope, trainable),
            List.of(mb),
            deviceBank,
            mb.size(),
            seed,
            DataType.FLOAT32,
            WirePrecision.FP32);
      }
      lastCpu = (processCpuNanos() - c0) / 1e9;
      return (System.nanoTime() - t0) / 1e9;
    }

    @Override
    public void close() {
      manager.close();
    }
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  private static double median(List<Double> v) {
    double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  }

  // ---- a. worker step: plain fine-tuning vs CAP ----

  private void workerSteps() {
    System.out.println(
        "worker: plain fine-tuning step vs CAP step, batch 32, sequence length 128, CPU");
    workerStep("MiniLM (6 x 384)", miniLm(), quick ? 3 : 7);
    if (!quick) {
      workerStep("BERT-base (12 x 768)", bertBase(), 3);
    }
  }

  private void workerStep(String name, BertConfig config, int reps) {
    int bankRows = 8192;
    try (Worker w = new Worker(config, bankRows)) {
      List<EncodedExample> ex = randomExamples(BATCH, config.vocabSize(), SEQ, SEQ, SEED);
      int[] rows = new int[BATCH];
      for (int i = 0; i < BATCH; i++) {
        rows[i] = i;
      }
      MicroBatch mb = microBatch(ex, rows, SEQ);
      // The job's default CAP objective: CE + KD from the bank's teacher logits + PrC, FiC and SnC
      // with 4,096 extra negatives per bank.
      CapLoss cap = new CapLoss(CapLossConfig.defaults());
      w.step(null, mb, 0);
      w.step(cap, mb, 0);
      List<Double> plain = new ArrayList<>();
      List<Double> capped = new ArrayList<>();
      List<Double> plainCpu = new ArrayList<>();
      List<Double> capCpu = new ArrayList<>();
      List<Double> ratios = new ArrayList<>();
      for (int i = 0; i < reps; i++) {
        // interleaved pairs, so that a change of machine load hits both alike
        plain.add(w.step(null, mb, i));
        plainCpu.add(w.lastCpu);
        capped.add(w.step(cap, mb, i));
        capCpu.add(w.lastCpu);
        ratios.add(capped.get(i) / plain.get(i));
      }
      double p = median(plain);
      double c = median(capped);
      row(
          "a. " + name + " plain step",
          String.format("%.3f s wall, %.3f s CPU", p, median(plainCpu)),
          "median of "
              + reps
              + ", wall "
              + fmtList(plain)
              + ", load "
              + String.format("%.2f", load()));
      row(
          "a. " + name + " CAP step",
          String.format("%.3f s wall, %.3f s CPU", c, median(capCpu)),
          "median of "
              + reps
              + ", wall "
              + fmtList(capped)
              + "; three banks, "
              + bankRows
              + "-row bank, 4,096 negatives per bank");
      row(
          "a. " + name + " CAP / plain",
          String.format(
              "%.3f (pairs), %.3f (CPU)", median(ratios), median(capCpu) / median(plainCpu)),
          "median of the pairs' wall ratios " + fmtList(ratios) + "; target <= 1.15");
    }
  }

  private static String fmtList(List<Double> v) {
    StringBuilder b = new StringBuilder("[");
    for (double x : v) {
      b.append(b.length() > 1 ? " " : "").append(String.format("%.2f", x));
    }
    return b.append("]").toString();
  }

  // ---- b. driver update ----

  private void driverUpdate() {
    System.out.println(
        "driver: DriverUpdate.apply on a BERT-base-sized state (cap-movement, mid-ramp)");
    Map<String, int[]> shapes = BertInit.shapes(bertBase());
    LinkedHashMap<String, HostTensor> weights = random(shapes, 0.02, 1);
    long total = numel(weights);
    long steps = 1000;
    DriverUpdate update =
        new DriverUpdate(
            PruningConfig.of(
                PruningCriterion.MOVEMENT, new SparsitySchedule(10, 0, 0, steps, 1.0, 0.03), 0),
            OptimizerConfig.unstructuredDefaults(10, steps));
    TrainingState state = update.initialState(weights);
    LinkedHashMap<String, HostTensor> trainableShapes = new LinkedHashMap<>();
    shapes.forEach(
        (k, s) -> {
          if (state.isTrainable(k)) {
            trainableShapes.put(k, HostTensor.zeros(s));
          }
        });
    // Two gradient sets in turn: with one fixed gradient Adam moves every score alike and the
    // scores collapse onto two values, which is not a realistic state for the top-k.
    List<Map<String, HostTensor>> grads =
        List.of(randomLike(trainableShapes, 1e-4, 2), randomLike(trainableShapes, 1e-4, 3));
    int warmup = 2;
    int runs = quick ? 3 : 6;
    List<Double> times = new ArrayList<>();
    List<Double> publish = new ArrayList<>();
    List<Double> packing = new ArrayList<>();
    List<String> names = new ArrayList<>(trainableShapes.keySet());
    for (int i = 0; i < warmup + runs; i++) {
      long t0 = System.nanoTime();
      update.apply(state, grads.get(i % 2));
      double s = (System.nanoTime() - t0) / 1e9;
      long t1 = System.nanoTime();
      state.effectiveWeights(false);
      double e = (System.nanoTime() - t1) / 1e9;
      long t2 = System.nanoTime();
      PackedWeights.pack(
          state.weights(), state.masks(), names, MaskSet.of(state.masks()), WirePrecision.FP16);
      double pk = (System.nanoTime() - t2) / 1e9;
      if (i >= warmup) {
        times.add(s);
        publish.add(e);
        packing.add(pk);
      }
    }
    row(
        "b. driver update, BERT-base state",
        String.format("%.3f s", median(times)),
        String.format(
            "%,d parameters; clip, AdamW, scores, per-matrix top-k; median of %d %s; "
                + "target < 1 s; load %.2f",
            total, runs, fmtList(times), load()));
    row(
        "b. effective weights W*M, dense fp32 (before)",
        String.format("%.3f s", median(publish)),
        "median of " + runs);
    row(
        "b. mask bits + packed fp16 weights (after)",
        String.format("%.3f s", median(packing)),
        String.format("median of %d; sparsity %.2f", runs, state.sparsity().sparsity()));
  }

  private static LinkedHashMap<String, HostTensor> random(
      Map<String, int[]> shapes, double std, long seed) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    shapes.forEach((k, s) -> out.put(k, HostTensor.zeros(s)));
    return fill(out, std, seed);
  }

  private static LinkedHashMap<String, HostTensor> randomLike(
      Map<String, HostTensor> like, double std, long seed) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    like.forEach((k, t) -> out.put(k, HostTensor.zeros(t.shape())));
    return fill(out, std, seed);
  }

  private static LinkedHashMap<String, HostTensor> fill(
      LinkedHashMap<String, HostTensor> m, double std, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    for (HostTensor t : m.values()) {
      float[] d = t.data();
      for (int i = 0; i < d.length; i++) {
        // uniform with the given standard deviation: as good as Gaussian here, and 5x faster
        d[i] = (float) ((r.nextDouble() * 2 - 1) * std * 1.7320508);
      }
    }
    return m;
  }

  // ---- c. the exchange ----

  private JavaSparkContext spark() {
    if (sc == null) {
      sc =
          new JavaSparkContext(
              new SparkConf()
                  .setMaster("local[2]")
                  .setAppName("cap-prune-bench")
                  .set("spark.ui.enabled", "false")
                  .set("spark.driver.host", "127.0.0.1")
                  .set("spark.driver.maxResultSize", "4g")
                  .set("spark.ui.retainedJobs", "50")
                  .set("spark.ui.retainedStages", "50")
                  .set("spark.ui.retainedTasks", "500"));
      sc.setLogLevel("WARN");
    }
    return sc;
  }

  /** Task results (gradients up) as Spark counts them. */
  private static final class ResultSizes extends SparkListener {
    final ConcurrentLinkedQueue<long[]> tasks = new ConcurrentLinkedQueue<>();

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      if (end.taskMetrics() != null) {
        tasks.add(
            new long[] {
              end.stageId(),
              end.taskMetrics().resultSize(),
              end.taskMetrics().executorDeserializeTime(),
              end.taskMetrics().resultSerializationTime()
            });
      }
    }
  }

  private void exchange() throws Exception {
    for (WirePrecision p : WirePrecision.values()) {
      exchange(p);
    }
  }

  private void exchange(WirePrecision precision) throws Exception {
    String tag = " [" + precision.name().toLowerCase(java.util.Locale.ROOT) + " wire]";
    System.out.println(
        "exchange: MiniLM size, 2 partitions in local[2], batch 32, sequence length 128" + tag);
    JavaSparkContext sc = spark();
    BertConfig config = miniLm();
    int steps = quick ? 6 : 9;
    int n = BATCH * steps;
    List<EncodedExample> ex = randomExamples(n, config.vocabSize(), SEQ, SEQ, SEED);
    List<Shard> shards = new ArrayList<>();
    for (int p = 0; p < 2; p++) {
      List<EncodedExample> mine = new ArrayList<>();
      for (int i = p; i < n; i += 2) {
        mine.add(ex.get(i));
      }
      long[] index = mine.stream().mapToLong(EncodedExample::globalIndex).toArray();
      int[] labels = mine.stream().mapToInt(EncodedExample::label).toArray();
      shards.add(
          new Shard(
              p,
              mine.toArray(EncodedExample[]::new),
              bank(index, labels, config.hiddenSize(), n, SEED + p)));
    }
    JavaRDD<Shard> rdd = sc.parallelize(shards, 2).cache();
    rdd.count();
    LinkedHashMap<String, HostTensor> weights = new LinkedHashMap<>(BertInit.init(config, SEED));
    long modelFp32 = numel(weights) * 4;
    DriverUpdate update =
        new DriverUpdate(
            PruningConfig.of(
                PruningCriterion.MOVEMENT, new SparsitySchedule(1, 0, 0, steps, 1.0, 0.5), 0),
            OptimizerConfig.unstructuredDefaults(1, steps));
    TrainingState state = update.initialState(weights);
    TaskSettings ws = new TaskSettings(config, BATCH, 0, 0, false, 0, false);
    CapLossConfig loss = CapLossConfig.defaults().withExtraExamples(n / 2 - BATCH);
    DistributedTrainer trainer = new DistributedTrainer(sc, ws, loss, update, precision);
    ResultSizes listener = new ResultSizes();
    sc.sc().addSparkListener(listener);
    int window = steps / 3;
    trainer.train(
        rdd, state, new DistributedTrainer.Plan("bench", 1, BATCH, n, SEED, window, 2), null, null);
    sc.sc().removeSparkListener(listener);
    StepTimings t = trainer.lastTiming();
    // the last window's steps: the task results of its stages
    List<long[]> tasks = new ArrayList<>(listener.tasks);
    tasks.sort((a, b) -> Long.compare(a[0], b[0]));
    List<long[]> last = tasks.subList(Math.max(0, tasks.size() - 2 * window), tasks.size());
    double up = last.stream().mapToLong(a -> a[1]).average().orElse(0);
    List<String> trainableNames = new ArrayList<>(state.weights().keySet());
    trainableNames.removeAll(state.frozen());
    MaskSet lastMasks = MaskSet.of(state.masks());
    long down =
        wireBytes(
            PackedWeights.pack(
                state.weights(), state.masks(), trainableNames, lastMasks, precision));
    long maskBytes = wireBytes(lastMasks);
    double step = t.step();
    // Local mode: the two partitions take turns on the JVM's one DJL worker, so the compute part of
    // the job is the sum of both partitions' compute, not the slowest one.
    double outside = step - t.workersTotal();
    if (precision == WirePrecision.FP32) {
      row(
          "c. model size fp32",
          mb(modelFp32),
          String.format(
              "%,d parameters; %,d trainable " + "(embeddings frozen, sent once per stage)",
              modelFp32 / 4, numel(state.effectiveWeights(false))));
      // weights down at fixed sparsities: random masks of the prunable matrices, kept share 1-s
      for (double sparsity : new double[] {0, 0.5, 0.9}) {
        LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
        SplittableRandom r = new SplittableRandom(SEED);
        state
            .masks()
            .forEach(
                (k, v) -> {
                  HostTensor mt = HostTensor.zeros(v.shape());
                  for (int i = 0; i < mt.data().length; i++) {
                    mt.data()[i] = r.nextDouble() >= sparsity ? 1f : 0f;
                  }
                  m.put(k, mt);
                });
        MaskSet ms = MaskSet.of(m);
        for (WirePrecision p : WirePrecision.values()) {
          row(
              String.format(
                  "c. weights down per step, %.0f %% sparsity, %s",
                  sparsity * 100, p.name().toLowerCase(java.util.Locale.ROOT)),
              mb(wireBytes(PackedWeights.pack(state.weights(), m, trainableNames, ms, p))),
              "serialised + LZ4 as TorrentBroadcast writes it; masks "
                  + mb(wireBytes(ms))
                  + " once per change");
        }
      }
    }
    row(
        "c. weights down per step per executor" + tag,
        mb(down),
        String.format(
            "last step's packed "
                + "weights at sparsity %.2f; the masks (%s) were broadcast %d times in %d steps",
            state.sparsity().sparsity(), mb(maskBytes), trainer.maskBroadcasts(), steps));
    row(
        "c. gradients up per step per executor" + tag,
        mb((long) up),
        "task result size reported by " + "Spark, mean of the last " + window + " steps");
    row(
        "c. step time (2 partitions, local[2])" + tag,
        String.format("%.3f s", step),
        String.format(
            "publish %.3f + job %.3f + update %.3f; mean of the last %d of %d steps",
            t.publish(), t.job(), t.update(), window, steps));
    row(
        "c. compute (both partitions, serial in one JVM)" + tag,
        String.format("%.3f s", t.workersTotal()),
        String.format("slowest partition %.3f s", t.workers()));
    row(
        "c. outside the workers' compute" + tag,
        String.format("%.3f s = %.0f %%", outside, 100 * outside / step),
        String.format(
            "publish %.3f, scheduling+serialisation+aggregation "
                + "%.3f, driver update %.3f; load %.2f",
            t.publish(), t.job() - t.workersTotal(), t.update(), load()));
    rdd.unpersist();
  }

  private static String mb(long bytes) {
    return String.format("%.1f MB", bytes / 1e6);
  }

  /** Bytes of {@code value} as TorrentBroadcast stores it: Spark's serializer, then LZ4. */
  static long wireBytes(Object value) throws IOException {
    SparkConf conf = SparkEnv.get().conf();
    CountingStream count = new CountingStream();
    OutputStream compressed = new LZ4CompressionCodec(conf).compressedOutputStream(count);
    SerializationStream s = SparkEnv.get().serializer().newInstance().serializeStream(compressed);
    s.writeObject(value, scala.reflect.ClassTag$.MODULE$.Any());
    s.close();
    return count.n;
  }

  private static final class CountingStream extends OutputStream {
    long n;

    @Override
    public void write(int b) {
      n++;
    }

    @Override
    public void write(byte[] b, int off, int len) {
      n += len;
    }
  }

  // ---- d. memory of a worker over 1,000 steps ----

  private void memory() {
    int steps = 1000;
    System.out.println(
        "memory: " + steps + " training steps of a tiny model through TrainStepTask");
    JavaSparkContext sc = spark();
    BertConfig config = tiny();
    int n = 64;
    List<EncodedExample> ex = randomExamples(n, config.vocabSize(), 4, 40, SEED);
    long[] index = ex.stream().mapToLong(EncodedExample::globalIndex).toArray();
    int[] labels = ex.stream().mapToInt(EncodedExample::label).toArray();
    Shard shard =
        new Shard(
            0,
            ex.toArray(EncodedExample[]::new),
            bank(index, labels, config.hiddenSize(), n, SEED));
    Map<String, HostTensor> all = BertInit.init(config, SEED);
    LinkedHashMap<String, HostTensor> trainable = split(all, false);
    Broadcast<LinkedHashMap<String, HostTensor>> frozen = sc.broadcast(split(all, true));
    ParameterLayout layout = ParameterLayout.of(trainable);
    List<String> names = List.copyOf(trainable.keySet());
    MaskSet none = MaskSet.none();
    Broadcast<MaskSet> masks = sc.broadcast(none);
    TaskSettings ws = new TaskSettings(config, 16, 0, 0, false, DjlRuntime.numThreads(), false);
    CapLossConfig loss = CapLossConfig.defaults().withExtraExamples(16);
    List<long[]> samples = new ArrayList<>();
    long t0 = System.nanoTime();
    for (int s = 0; s < steps; s++) {
      long[] batch = new long[BATCH];
      for (int i = 0; i < BATCH; i++) {
        batch[i] = (s * BATCH + i) % n;
      }
      // the trainer publishes fresh weights each step and destroys the broadcast after the job
      Broadcast<PackedWeights> w =
          sc.broadcast(PackedWeights.pack(trainable, Map.of(), names, none, WirePrecision.FP16));
      GradientBuffer g =
          new TrainStepTask(ws, loss, w, masks, frozen, batch, s, SEED, layout).run(shard);
      w.destroy();
      if (g.examples() != BATCH) {
        throw new IllegalStateException("step " + s + " computed " + g.examples() + " examples");
      }
      if (s % 50 == 0 || s == steps - 1) {
        System.gc();
        java.lang.management.MemoryMXBean mx = ManagementFactory.getMemoryMXBean();
        long heap = mx.getHeapMemoryUsage().getUsed();
        long rss = rssBytes();
        // native memory outside the JVM's own pools: RSS minus committed heap and non-heap (code
        // cache, metaspace), so that the heap growing its committed size is not taken for a leak
        long jvm =
            mx.getHeapMemoryUsage().getCommitted() + mx.getNonHeapMemoryUsage().getCommitted();
        samples.add(new long[] {s, heap, rss, rss - jvm});
        System.out.printf(
            "    step %4d: heap used %s, RSS %s, RSS - JVM pools %s%n",
            s, mb(heap), mb(rss), mb(rss - jvm));
      }
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    frozen.destroy();
    masks.destroy();
    // Slope over the second half: the first steps warm up allocators, JIT and PyTorch's caches.
    List<long[]> tail = samples.subList(samples.size() / 2, samples.size());
    long[] first = samples.get(0);
    long[] lastS = samples.get(samples.size() - 1);
    row(
        "d. heap after GC, step 0 -> " + (steps - 1),
        mb(first[1]) + " -> " + mb(lastS[1]),
        String.format(
            "slope over steps %d-%d: %+.1f KB per 100 steps; %d steps in %.0f s",
            tail.get(0)[0], steps - 1, slope(tail, 1) * 100 / 1e3, steps, secs));
    row(
        "d. RSS, step 0 -> " + (steps - 1),
        mb(first[2]) + " -> " + mb(lastS[2]),
        String.format(
            "slope over steps %d-%d: %+.1f KB per 100 steps",
            tail.get(0)[0], steps - 1, slope(tail, 2) * 100 / 1e3));
    row(
        "d. native (RSS - JVM heap and non-heap committed), step 0 -> " + (steps - 1),
        mb(first[3]) + " -> " + mb(lastS[3]),
        String.format(
            "slope over steps %d-%d: %+.1f KB per " + "100 steps",
            tail.get(0)[0], steps - 1, slope(tail, 3) * 100 / 1e3));
  }

  /** Least-squares slope of column {@code col} against the step (bytes per step). */
  private static double slope(List<long[]> s, int col) {
    double mx = s.stream().mapToDouble(a -> a[0]).average().orElse(0);
    double my = s.stream().mapToDouble(a -> a[col]).average().orElse(0);
    double num = 0;
    double den = 0;
    for (long[] a : s) {
      num += (a[0] - mx) * (a[col] - my);
      den += (a[0] - mx) * (a[0] - mx);
    }
    return den == 0 ? 0 : num / den;
  }

  private static long rssBytes() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException e) {
      return -1;
    }
    return -1;
  }

  // ---- 2. dynamic padding on SST-2 ----

  private void padding() throws IOException {
    Path tsv = data.resolve("glue/SST-2/train.tsv");
    Path vocab = data.resolve("models/all-MiniLM-L6-v2/vocab.txt");
    if (!Files.isRegularFile(tsv) || !Files.isRegularFile(vocab)) {
      row("2. dynamic padding", "skipped", "needs " + tsv + " and " + vocab + " (--data DIR)");
      return;
    }
    System.out.println("padding: SST-2 train, MiniLM size, CAP step, padded to 128 vs per batch");
    BertTokenizer tok = BertTokenizer.fromVocabFile(vocab, true);
    List<EncodedExample> ex = new ArrayList<>();
    List<String> lines = Files.readAllLines(tsv, StandardCharsets.UTF_8);
    for (int i = 1; i < lines.size(); i++) {
      String[] f = lines.get(i).split("\t");
      int[] ids = tok.encode(f[0], SEQ).inputIds();
      ex.add(
          new EncodedExample(
              i - 1, ids, new byte[ids.length], Integer.parseInt(f[1].trim()), Float.NaN));
    }
    // one epoch's batches in the trainer's order: padded tokens with each policy
    long[] perm = permutation(ex.size(), 42);
    int batches = (ex.size() + BATCH - 1) / BATCH;
    long dynamicTokens = 0;
    double meanLen = ex.stream().mapToInt(e -> e.inputIds().length).average().orElse(0);
    List<int[]> rowsOf = new ArrayList<>();
    for (int b = 0; b < batches; b++) {
      int from = b * BATCH;
      int to = Math.min(ex.size(), from + BATCH);
      int[] rows = new int[to - from];
      int max = 0;
      for (int i = from; i < to; i++) {
        rows[i - from] = (int) perm[i];
        max = Math.max(max, ex.get((int) perm[i]).inputIds().length);
      }
      dynamicTokens += (long) max * rows.length;
      rowsOf.add(rows);
    }
    long fixedTokens = (long) ex.size() * SEQ;
    row(
        "2. SST-2 train tokens per epoch",
        String.format(
            "%,d padded to 128, %,d per batch (%.2fx fewer)",
            fixedTokens, dynamicTokens, fixedTokens / (double) dynamicTokens),
        String.format(
            "%,d examples, mean length %.1f tokens, %d batches of 32",
            ex.size(), meanLen, batches));
    int k = quick ? 4 : 8;
    try (Worker w = new Worker(miniLm(), 8192)) {
      CapLoss cap = new CapLoss(CapLossConfig.defaults());
      // bank rows: any 32 distinct rows of the benchmark bank stand for the batch's rows
      List<Double> fixed = new ArrayList<>();
      List<Double> dynamic = new ArrayList<>();
      double fixedCpu = 0;
      double dynamicCpu = 0;
      w.step(cap, microBatch(ex, rowsOf.get(0), SEQ, bankRowsFor(ex, rowsOf.get(0))), 0);
      for (int b = 0; b < k; b++) {
        int[] rows = rowsOf.get(b);
        int[] bankRows = bankRowsFor(ex, rows);
        fixed.add(w.step(cap, microBatch(ex, rows, SEQ, bankRows), b));
        fixedCpu += w.lastCpu;
        dynamic.add(w.step(cap, microBatch(ex, rows, 0, bankRows), b));
        dynamicCpu += w.lastCpu;
      }
      double f = fixed.stream().mapToDouble(Double::doubleValue).average().orElse(0);
      double d = dynamic.stream().mapToDouble(Double::doubleValue).average().orElse(0);
      row(
          "2. process CPU of those steps",
          String.format(
              "%.3f s -> %.3f s per step (%.2fx)",
              fixedCpu / k, dynamicCpu / k, fixedCpu / dynamicCpu),
          "all threads of the JVM");
      row(
          "2. CAP worker step on SST-2 batches, padded to 128",
          String.format("%.3f s", f),
          "mean over the epoch's first " + k + " batches " + fmtList(fixed));
      row("2. same batches, padded per batch", String.format("%.3f s", d), fmtList(dynamic));
      row(
          "2. SST-2 epoch (" + batches + " steps) worker compute",
          String.format("%.0f min -> %.0f min (%.2fx)", f * batches / 60, d * batches / 60, f / d),
          "measured mean step x steps per epoch; load " + String.format("%.2f", load()));
    }
  }

  /** Distinct rows of the benchmark bank (label = row % 2) with the labels of these examples. */
  private static int[] bankRowsFor(List<EncodedExample> ex, int[] rows) {
    int[] next = {0, 1};
    int[] out = new int[rows.length];
    for (int i = 0; i < rows.length; i++) {
      int label = ex.get(rows[i]).label();
      out[i] = next[label];
      next[label] += 2;
    }
    return out;
  }

  private static long[] permutation(int n, long seed) {
    long[] p = new long[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L);
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      long t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
