package io.capprune.spark.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.glue.GlueData;
import io.capprune.core.glue.GlueMetrics;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Representation;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsityReport;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.text.BertTokenizer;
import io.capprune.core.train.EncodedExample;
import io.capprune.core.train.Encoder;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.config.PruneMethod;
import io.capprune.spark.data.GlueFiles;
import io.capprune.spark.data.Shard;
import io.capprune.spark.io.RunDirectory;
import io.capprune.spark.io.SnapshotStore;
import io.capprune.spark.io.Storage;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.Plots;
import io.capprune.spark.report.RunSummary;
import io.capprune.spark.report.StepRecord;
import io.capprune.spark.train.DistributedTrainer;
import io.capprune.spark.worker.EncodeTask;
import io.capprune.spark.worker.TaskSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The stages of a CAP run over one output directory: {@code finetune} (the teacher), {@code prune}
 * (CAP or a baseline, with snapshots), {@code evaluate} (dev metrics), {@code export} (the Hugging
 * Face model users pull). Each stage reads what the previous one wrote, so any of them can run
 * alone, and {@link #run} skips a stage whose output is complete.
 */
public final class CapPipeline {
  private static final Logger LOG = LoggerFactory.getLogger(CapPipeline.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  public static final String TEACHER_DIR = "teacher";
  public static final String MODEL_DIR = "model";
  public static final String SNAPSHOTS_DIR = "snapshots";
  public static final String PLOTS_DIR = "plots";
  public static final String METRICS_JSON = "metrics.json";
  public static final String SPARSITY_JSON = "sparsity.json";
  public static final String FINAL_MARKER = "_PRUNED";

  final JobConfig config;
  final JavaSparkContext sc;
  final Storage storage;
  final RunDirectory out;
  private final GlueTask task;
  final HfCheckpoint pretrained;
  final BertConfig modelConfig;
  private final BertTokenizer tokenizer;
  private final HfCheckpoint givenTeacher;
  private final List<GlueData> devData;
  private GlueData trainData;
  private JavaRDD<Shard> trainShards;
  private long trainSize;
  private List<DevSplit> devSplits;

  /** A dev split, tokenized and partitioned for evaluation. */
  private record DevSplit(String name, JavaRDD<EncodedExample[]> partitions, int[] gold, float[] goldScores) {}

  /**
   * Everything that can be checked without Spark: configuration, checkpoints, data files, output.
   *
   * @param train the training split, read and parsed (every row checked)
   * @param dev the dev splits, read and parsed
   * @param teacher the checkpoint cap.teacher names, checked against the task; null when the
   *     finetune stage trains the teacher
   */
  public record Validated(JobConfig config, Storage storage, RunDirectory out, GlueTask task,
      HfCheckpoint pretrained, GlueData train, List<GlueData> dev, HfCheckpoint teacher) {}

  /**
   * Checks the inputs before any Spark work and opens the output directory. Nothing in the output
   * directory changes when this fails: every input is read and checked before the output directory
   * is opened (opening it writes run.json).
   */
  public static Validated validate(JobConfig config, org.apache.hadoop.conf.Configuration hadoop) {
    Storage storage = new Storage(Storage.hadoopConfiguration(hadoop, config.s3()));
    GlueTask task = GlueTask.of(config.task());
    if (config.model().isBlank()) {
      throw new IllegalArgumentException("cap.model: no pre-trained checkpoint given");
    }
    HfCheckpoint pretrained;
    try {
      pretrained = CheckpointStore.read(config.model(), storage.conf());
    } catch (IOException e) {
      throw new UncheckedIOException("cap.model: cannot read " + config.model() + ": " + e.getMessage(), e);
    }
    // The files are parsed here, on the driver, where the training stage reads them anyway: a
    // malformed row then stops the job before Spark starts and before run.json is written.
    GlueData train = GlueFiles.read(storage, config.dataDir(), task, task.trainSplit(), config.labels(),
        config.skipBadRows(), config.maxTrainExamples());
    if (train.size() == 0) {
      throw new IllegalArgumentException(train.source() + ": no training examples");
    }
    List<GlueData> dev = new ArrayList<>();
    for (String split : task.devSplits()) {
      dev.add(GlueFiles.read(storage, config.dataDir(), task, split, config.labels(),
          config.skipBadRows(), config.maxDevExamples()));
    }
    HfCheckpoint teacher = null;
    if (!config.teacher().isBlank()) {
      try {
        teacher = CheckpointStore.read(config.teacher(), storage.conf());
      } catch (IOException e) {
        throw new UncheckedIOException("cap.teacher: cannot read " + config.teacher() + ": " + e.getMessage(), e);
      }
      checkTeacher(teacher, config.teacher(), studentConfig(config, task, pretrained), task);
    }
    // Every check that needs the data's size or the model's shape, before Spark and training.
    boolean trainsTeacher = config.teacher().isBlank() && (config.overwrite() || config.output().isBlank()
        || !storage.exists(new Path(new Path(config.output(), TEACHER_DIR), CheckpointStore.CONFIG)));
    io.capprune.spark.config.Preflight.check(config, train.size(), studentConfig(config, task, pretrained),
        trainsTeacher);
    if (config.spark().partitions() > 0) {
      io.capprune.spark.config.Preflight.negativesWarning(config, train.size(), config.spark().partitions())
          .ifPresent(LOG::warn);
    }
    Map<String, String> identity = new LinkedHashMap<>();
    identity.put("task", task.name());
    identity.put("model", config.model());
    identity.put("data-dir", config.dataDir());
    identity.put("method", config.prune().method().configName());
    identity.put("final-threshold", Double.toString(config.prune().finalThreshold()));
    RunDirectory out = RunDirectory.open(storage, config.output(), identity, config.overwrite());
    return new Validated(config, storage, out, task, pretrained, train, List.copyOf(dev), teacher);
  }

  public CapPipeline(Validated v, JavaSparkContext sc) {
    this.config = v.config();
    this.sc = sc;
    this.storage = v.storage();
    this.out = v.out();
    this.task = v.task();
    this.pretrained = v.pretrained();
    this.modelConfig = studentConfig(config, task, pretrained);
    this.tokenizer = new BertTokenizer(pretrained.vocab(), true);
    this.trainData = v.train();
    this.devData = v.dev();
    this.givenTeacher = v.teacher();
  }

  /** The student's configuration: the pre-trained model's with this task's classifier. */
  private static BertConfig studentConfig(JobConfig config, GlueTask task, HfCheckpoint pretrained) {
    List<String> labels = config.labels().isEmpty() ? task.labels() : config.labels();
    return task.isRegression()
        ? pretrained.config().withNumLabels(1)
        : pretrained.config().withLabels(labels);
  }

  /** A teacher must classify into the task's labels and have the student's width (FiC). */
  private static void checkTeacher(HfCheckpoint teacher, String location, BertConfig student, GlueTask task) {
    BertConfig tc = teacher.config();
    if (!teacher.hasClassifier() || tc.numLabels() != student.numLabels()
        || (!tc.labels().isEmpty() && !student.labels().isEmpty() && !tc.labels().equals(student.labels()))) {
      throw new IllegalArgumentException("cap.teacher: " + location + " has "
          + (teacher.hasClassifier() ? tc.numLabels() + " labels " + tc.labels() : "no classifier")
          + " but task " + task.dirName() + " needs " + student.numLabels() + " " + student.labels());
    }
    if (tc.hiddenSize() != student.hiddenSize()) {
      throw new IllegalArgumentException("cap.teacher: " + location + " has hidden size " + tc.hiddenSize()
          + ", the student " + student.hiddenSize() + " (FiC compares their vectors)");
    }
  }

  // ------------------------------------------------------------------------------------ stages

  /** finetune, prune, evaluate, export; a stage whose output is complete is skipped. */
  public void run() {
    if (!config.teacher().isBlank()) {
      // A given teacher is the finetune stage's output already; finetune() refuses to replace it.
      LOG.info("finetune: skipped, cap.teacher = {}", config.teacher());
    } else if (teacherComplete()) {
      LOG.info("finetune: skipped, {} holds a teacher", teacherLocation());
    } else {
      finetune();
    }
    if (storage.exists(out.resolve(FINAL_MARKER))) {
      LOG.info("prune: skipped, {} exists", out.resolve(FINAL_MARKER));
    } else {
      prune();
    }
    evaluate();
    export();
  }

  /**
   * Trains the teacher from the pre-trained checkpoint with the task loss; writes {@code teacher/},
   * then scores it on the dev set: the metrics go to the log, {@code metrics.json} and
   * {@code summary.txt} (a teacher is a result in its own right; later stages overwrite both).
   *
   * @return the teacher's dev metrics
   */
  public Map<String, Double> finetune() {
    if (!config.teacher().isBlank()) {
      throw new IllegalArgumentException("cap.teacher is set (" + config.teacher()
          + "): the teacher exists; nothing to fine-tune");
    }
    if (teacherComplete()) {
      throw new IllegalStateException(teacherLocation() + " already holds a teacher; pass --overwrite to train it again");
    }
    JobConfig.FinetuneSettings ft = config.finetune();
    LinkedHashMap<String, HostTensor> init = studentInit();
    DistributedTrainer.Plan plan = new DistributedTrainer.Plan("finetune", ft.epochs(), ft.batchSize(),
        trainSize(), config.seed(), config.logEverySteps(), config.spark().aggregateDepth());
    long total = plan.totalSteps();
    OptimizerConfig opt = new OptimizerConfig(ft.learningRate(), ft.learningRate(), ft.weightDecay(),
        0.9, 0.999, 1e-8, ft.maxGradNorm(), LinearWarmupDecay.withWarmupRatio(ft.warmupRatio(), total));
    PruningConfig dense = new PruningConfig(PruningCriterion.MAGNITUDE,
        SparsitySchedule.constant(1.0, total), false, 0, false, 0);
    DriverUpdate update = new DriverUpdate(dense, opt);
    TrainingState state = update.initialState(init);
    LOG.info("finetune: {} examples, {} epochs x {} steps, batch {}", trainSize(), ft.epochs(),
        plan.stepsPerEpoch(), ft.batchSize());
    DistributedTrainer trainer = new DistributedTrainer(sc, workerSettings(), null, update,
        exchangePrecision());
    try (MetricsLog log = MetricsLog.create(storage.fs(out.root()), out.resolve("finetune"), 50)) {
      trainer.train(trainShards(), state, plan, null, log);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    HfCheckpoint teacher = new HfCheckpoint("teacher", modelConfig, state.weights(), pretrained.vocab());
    try {
      CheckpointStore.write(teacher, out.resolve(TEACHER_DIR).toString(), storage.conf(), false);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the teacher to " + teacherLocation() + ": " + e.getMessage(), e);
    }
    LOG.info("finetune: teacher written to {}", teacherLocation());
    Map<String, Double> dev = evaluateWeights(new LinkedHashMap<>(teacher.tensors()));
    Map<String, Object> metrics = new LinkedHashMap<>();
    metrics.put("task", task.name());
    metrics.put("teacher", dev);
    Map<String, String> scored = new LinkedHashMap<>();
    scored.put("teacher", TEACHER_DIR + "/");
    metrics.put("scored", scored);
    writeJson(out.resolve(METRICS_JSON), metrics);
    List<StepRecord> records = readRecords(new Path(out.resolve("finetune"), MetricsLog.FILE_NAME));
    Map<String, String> locations = new LinkedHashMap<>();
    locations.put("teacher", teacherLocation());
    locations.put("metrics", out.resolve(METRICS_JSON).toString());
    RunSummary summary = RunSummary.of(task.name(),
        config.prune().method().configName() + " (not pruned yet: finetune only, the teacher)", records,
        dev, Map.of(), locations);
    try {
      String text = summary.write(storage.fs(out.root()), out.root());
      LOG.info("finetune: teacher dev metrics {}\n{}", dev, text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return dev;
  }

  private List<StepRecord> readRecords(Path jsonl) {
    try {
      return storage.exists(jsonl) ? MetricsLog.read(storage.fs(jsonl), jsonl) : List.of();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Prunes with cap.prune.method from the pre-trained model, distilling from the teacher. */
  public void prune() {
    if (config.prune().method().structured()) {
      new StructuredPrune(this).run();
      return;
    }
    JobConfig.PruneSettings p = config.prune();
    HfCheckpoint teacher = readTeacher();
    LinkedHashMap<String, HostTensor> init = studentInit();
    DistributedTrainer.Plan plan = new DistributedTrainer.Plan("prune", p.epochs(), p.batchSize(),
        trainSize(), config.seed(), config.logEverySteps(), config.spark().aggregateDepth());
    long total = plan.totalSteps();
    // Checked in validate() already, before Spark; the same rule here for a pipeline built otherwise.
    io.capprune.spark.config.Preflight.checkSchedule(p, trainSize());
    long warmup = io.capprune.spark.config.Preflight.warmupSteps(p, total);
    PruneMethod method = p.method();
    PruningCriterion criterion = PruningCriterion.valueOf(method.criterion().name());
    boolean soft = criterion == PruningCriterion.SOFT_MOVEMENT;
    SparsitySchedule schedule = new SparsitySchedule(warmup, p.initialWarmup(), p.finalWarmup(), total,
        soft ? p.softInitialThreshold() : p.initialThreshold(),
        soft ? p.softFinalThreshold() : p.finalThreshold());
    PruningConfig pruning = new PruningConfig(criterion, schedule, p.globalTopk(),
        soft ? p.finalLambda() : 0, p.freezeEmbeddings(), 0, p.scoreInitMagnitude());
    OptimizerConfig opt = new OptimizerConfig(p.learningRate(), p.scoreLearningRate(), p.weightDecay(),
        0.9, 0.999, p.adamEpsilon(), p.maxGradNorm(), new LinearWarmupDecay(warmup, total));
    DriverUpdate update = new DriverUpdate(pruning, opt);
    CapLossConfig loss = lossConfig();

    SnapshotStore snapshots = new SnapshotStore(storage, out.resolve(SNAPSHOTS_DIR));
    TrainingState state;
    MetricsLog log;
    List<SnapshotStore.Snapshot> earlier = snapshots.committed();
    if (!earlier.isEmpty() && !config.resume()) {
      throw new IllegalStateException(out.resolve(SNAPSHOTS_DIR) + " holds snapshots of an earlier run;"
          + " pass --resume to continue it or --overwrite to start again");
    }
    try {
      if (config.resume() && !earlier.isEmpty()) {
        SnapshotStore.Snapshot last = earlier.get(earlier.size() - 1);
        LOG.info("prune: resuming from snapshot {} (step {}, epoch {})", last.dir(), last.step(), last.epoch());
        state = snapshots.read(last);
        log = MetricsLog.resume(storage.fs(out.root()), out.root(), 20, last.step());
      } else {
        // Its own copy: the PrC bank below is encoded from init, which must not see training.
        state = update.initialState(studentInit());
        log = MetricsLog.create(storage.fs(out.root()), out.root(), 20);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    LOG.info("prune: method {}, {} examples, {} epochs x {} steps, batch {}, warm-up {} steps, target {}",
        method.configName(), trainSize(), p.epochs(), plan.stepsPerEpoch(), p.batchSize(), warmup,
        soft ? "lambda " + p.finalLambda() : "keep " + p.finalThreshold());

    JavaRDD<Shard> shards = withBanks(trainShards(), teacher, init, loss);
    // SnC slices of the snapshots before the resume point (the resumed epoch adds its own).
    if (loss.uses(Kind.SNAP) && loss.contrastive()) {
      for (SnapshotStore.Snapshot s : earlier) {
        if (config.resume() && s.step() < state.step() && s.epoch() >= 1) {
          shards = withSnapshotSlice(shards, snapshots.effectiveWeights(s), true);
        }
      }
    }
    Map<String, Object> metricsSoFar = new LinkedHashMap<>();
    DistributedTrainer trainer = new DistributedTrainer(sc, workerSettings(), loss, update,
        exchangePrecision());
    DistributedTrainer.EpochHook hook = (epoch, st, current) -> {
      JavaRDD<Shard> next = current;
      Map<String, Double> dev = null;
      if (epoch >= 1 && epoch % p.snapshotEveryEpochs() == 0 || epoch == p.epochs()) {
        dev = evaluateWeights(st.effectiveWeights());
        metricsSoFar.put("epoch " + epoch + " (step " + st.step() + ")", dev);
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("dev", dev);
        extra.put("seed", config.seed());
        extra.put("total_steps", total);
        extra.put("final", epoch == p.epochs());
        extra.put("config", config.rendered());
        snapshots.write(st, epoch, extra);
        LOG.info("prune: epoch {} of {}: sparsity {}, dev {}", epoch, p.epochs(),
            String.format("%.2f%%", 100 * st.sparsity().sparsity()), dev);
      }
      if (epoch >= 1 && epoch < p.epochs() && loss.contrastive() && loss.uses(Kind.SNAP)) {
        next = withSnapshotSlice(current, st.effectiveWeights(), true);
      }
      return new DistributedTrainer.EpochHook.Outcome(next, dev);
    };
    trainer.train(shards, state, plan, hook, log);
    try {
      log.close();
      Plots.writeAll(log.records(), storage.fs(out.root()), out.resolve(PLOTS_DIR));
      storage.writeString(out.resolve(FINAL_MARKER), "step " + state.step() + "\n", true);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    LOG.info("prune: done, {} steps, sparsity {}", state.step(),
        String.format("%.2f%%", 100 * state.sparsity().sparsity()));
  }

  /**
   * Dev metrics of whatever the output directory holds into metrics.json: the teacher (cap.teacher
   * or {@code teacher/}) and the pruned model, which is the final snapshot when pruning finished and
   * the last committed snapshot otherwise ({@code pruned_final} says which; {@code scored} names
   * both). Refuses only when there is neither a teacher nor a committed snapshot.
   */
  public Map<String, Object> evaluate() {
    SnapshotStore store = new SnapshotStore(storage, out.resolve(SNAPSHOTS_DIR));
    List<SnapshotStore.Snapshot> committed = store.committed();
    boolean hasTeacher = givenTeacher != null || !config.teacher().isBlank() || teacherComplete();
    if (!hasTeacher && committed.isEmpty()) {
      throw new IllegalStateException(out.root() + " holds nothing to score: no teacher in " + teacherLocation()
          + " and no committed snapshot in " + out.resolve(SNAPSHOTS_DIR)
          + "; run the finetune stage (or set cap.teacher) or the prune stage first");
    }
    Map<String, Object> metrics = new LinkedHashMap<>();
    Map<String, String> scored = new LinkedHashMap<>();
    metrics.put("task", task.name());
    if (hasTeacher) {
      metrics.put("teacher", evaluateWeights(new LinkedHashMap<>(readTeacher().tensors())));
      scored.put("teacher", config.teacher().isBlank() ? TEACHER_DIR + "/" : config.teacher());
    }
    if (!committed.isEmpty()) {
      SnapshotStore.Snapshot last = committed.get(committed.size() - 1);
      boolean isFinal = Boolean.TRUE.equals(last.state().get("final"));
      metrics.put("pruned", evaluateWeights(store.effectiveWeights(last)));
      metrics.put("pruned_step", last.step());
      metrics.put("pruned_final", isFinal);
      scored.put("pruned", (isFinal ? "final model: snapshot " : "last committed snapshot (pruning not finished): snapshot ")
          + SNAPSHOTS_DIR + "/" + last.dir().getName() + ", step " + last.step());
      Map<String, Object> perSnapshot = new LinkedHashMap<>();
      for (SnapshotStore.Snapshot s : committed) {
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("epoch", s.epoch());
        entry.put("sparsity", s.state().get("sparsity"));
        entry.put("dev", s.state().getOrDefault("dev", new LinkedHashMap<>()));
        perSnapshot.put(Long.toString(s.step()), entry);
      }
      metrics.put("snapshots", perSnapshot);
    }
    metrics.put("scored", scored);
    writeJson(out.resolve(METRICS_JSON), metrics);
    LOG.info("evaluate: {}", describeScores(metrics).replace("\n", "; "));
    return metrics;
  }

  /**
   * One line per model that {@link #evaluate} or {@link #finetune} scored: what it was and its dev
   * metrics, e.g. {@code teacher (teacher/): accuracy=0.8819}.
   */
  @SuppressWarnings("unchecked")
  public static String describeScores(Map<String, Object> metrics) {
    Map<String, Object> scored = metrics.get("scored") instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    StringBuilder s = new StringBuilder();
    for (String which : List.of("teacher", "pruned")) {
      if (metrics.get(which) instanceof Map<?, ?> dev) {
        if (s.length() > 0) {
          s.append('\n');
        }
        s.append(which).append(" (").append(scored.getOrDefault(which, "?")).append("):");
        dev.forEach((k, v) -> s.append(' ').append(k).append('=')
            .append(v instanceof Number n ? String.format(java.util.Locale.ROOT, "%.4f", n.doubleValue()) : v));
      }
    }
    return s.toString();
  }

  /** The pruned model in Hugging Face layout (pruned weights zeroed), sparsity.json, summary.txt. */
  public void export() {
    SnapshotStore store = new SnapshotStore(storage, out.resolve(SNAPSHOTS_DIR));
    SnapshotStore.Snapshot last = finalSnapshot();
    TrainingState state = store.read(last);
    LinkedHashMap<String, HostTensor> weights = state.effectiveWeights();
    Path modelDir = out.resolve(MODEL_DIR);
    // Structured runs export the physically smaller model (heads and neurons removed).
    HfCheckpoint model = config.prune().method().structured()
        ? StructuredPrune.smallerModel(modelConfig, weights, last, pretrained.vocab(),
            config.structured().padFfn())
        : new HfCheckpoint("pruned", modelConfig, weights, pretrained.vocab());
    try {
      CheckpointStore.write(model, modelDir.toString(), storage.conf(), true);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + modelDir + ": " + e.getMessage(), e);
    }
    SparsityReport report = state.sparsity();
    Map<String, Object> sparsity = new LinkedHashMap<>();
    sparsity.put("encoder_linear_weights", report.totalNumel());
    sparsity.put("kept", report.totalKept());
    sparsity.put("sparsity", report.sparsity());
    sparsity.put("remaining_encoder_fraction", report.remainingEncoderFraction());
    List<Map<String, Object>> matrices = new ArrayList<>();
    for (SparsityReport.Entry e : report.matrices()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", e.name());
      m.put("numel", e.numel());
      m.put("kept", e.kept());
      m.put("sparsity", e.sparsity());
      matrices.add(m);
    }
    sparsity.put("matrices", matrices);
    writeJson(out.resolve(SPARSITY_JSON), sparsity);

    Map<String, Object> metrics = readJson(out.resolve(METRICS_JSON));
    List<StepRecord> records;
    try {
      Path jsonl = out.resolve(MetricsLog.FILE_NAME);
      records = storage.exists(jsonl) ? MetricsLog.read(storage.fs(jsonl), jsonl) : List.of();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    Map<String, String> locations = new LinkedHashMap<>();
    locations.put("model", modelDir.toString());
    locations.put("sparsity", out.resolve(SPARSITY_JSON).toString());
    locations.put("metrics", out.resolve(METRICS_JSON).toString());
    locations.put("plots", out.resolve(PLOTS_DIR).toString());
    RunSummary summary = RunSummary.of(task.name(), config.prune().method().configName(), records,
        doubles(metrics.get("teacher")), doubles(metrics.get("pruned")), locations);
    try {
      String text = summary.write(storage.fs(out.root()), out.root());
      LOG.info("export: model written to {}\n{}", modelDir, text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // --------------------------------------------------------------------------------- internals

  private boolean teacherComplete() {
    return config.teacher().isBlank() && storage.exists(new Path(out.resolve(TEACHER_DIR), CheckpointStore.CONFIG));
  }

  private String teacherLocation() {
    return config.teacher().isBlank() ? out.resolve(TEACHER_DIR).toString() : config.teacher();
  }

  HfCheckpoint readTeacher() {
    if (givenTeacher != null) {
      return givenTeacher;
    }
    HfCheckpoint teacher;
    try {
      teacher = CheckpointStore.read(teacherLocation(), storage.conf());
    } catch (IOException e) {
      throw new UncheckedIOException("cap.teacher: cannot read " + teacherLocation()
          + (config.teacher().isBlank() ? " (run the finetune stage first)" : "") + ": " + e.getMessage(), e);
    }
    checkTeacher(teacher, teacherLocation(), modelConfig, task);
    return teacher;
  }

  /**
   * Pre-trained weights plus a pooler (if missing) and a new classifier, seeded. A fresh copy on
   * every call: training updates its arrays in place, and the pre-trained checkpoint must stay
   * pre-trained for the next stage of the same run (the student's start and the PrC bank).
   */
  LinkedHashMap<String, HostTensor> studentInit() {
    Map<String, HostTensor> base = new LinkedHashMap<>();
    pretrained.tensors().forEach((name, t) -> base.put(name, t.copy()));
    HostTensor cw = base.get("classifier.weight");
    if (cw != null && cw.shape()[0] != modelConfig.numLabels()) {
      LOG.warn("cap.model: its classifier has {} outputs, the task {}; starting a new classifier",
          cw.shape()[0], modelConfig.numLabels());
      base.remove("classifier.weight");
      base.remove("classifier.bias");
    }
    return new LinkedHashMap<>(BertInit.fillMissing(modelConfig, base, config.seed()));
  }

  TaskSettings workerSettings() {
    return new TaskSettings(modelConfig, config.worker().microBatchSize(),
        config.dynamicPadding() ? 0 : config.maxSeqLength(), tokenizer.padId(), config.worker().useGpu(),
        config.worker().threads(), task.isRegression());
  }

  CapLossConfig lossConfig() {
    JobConfig.LossSettings l = config.loss();
    Set<Kind> banks = EnumSet.noneOf(Kind.class);
    for (String m : l.modules()) {
      banks.add(switch (m) {
        case "prc" -> Kind.PRE;
        case "fic" -> Kind.FINE;
        default -> Kind.SNAP;
      });
    }
    return new CapLossConfig((float) l.ceWeight(), (float) l.kdWeight(), (float) l.kdTemperature(),
        (float) l.contrastiveTemperature(), (float) l.unsupervisedWeight(),
        task.isRegression() ? 0f : (float) l.supervisedWeight(), l.extraExamples(),
        Representation.Mode.valueOf(l.representation().toUpperCase(java.util.Locale.ROOT)), banks,
        config.prune().method().contrastive());
  }

  long trainSize() {
    trainShards();
    return trainSize;
  }

  /** The training set: read once on the driver, shuffled into partitions, tokenized there, cached. */
  JavaRDD<Shard> trainShards() {
    if (trainShards != null) {
      return trainShards;
    }
    GlueData data = trainData;
    if (data.skipped() > 0) {
      LOG.warn("{}: skipped {} malformed rows, e.g. {}", data.source(), data.skipped(), data.skippedSamples());
    }
    List<io.capprune.core.glue.GlueExample> examples = new ArrayList<>(data.examples());
    // A uniform random partition: shard-local negatives are then a uniform sample (decision 6).
    Collections.shuffle(examples, new Random(config.seed()));
    int partitions = partitions();
    if (config.spark().partitions() == 0) {
      // With cap.spark.partitions set, validate() has warned already.
      io.capprune.spark.config.Preflight.negativesWarning(config, data.size(), partitions).ifPresent(LOG::warn);
    }
    Broadcast<BertTokenizer> tok = sc.broadcast(tokenizer);
    // The examples travel as a broadcast, not as parallelize's data: a parallelized collection's
    // partitions carry their rows, so every later task (one per partition per training step) would
    // ship its shard's text again. Unpersisted below; Spark re-sends it if a lost shard is recomputed.
    Broadcast<List<io.capprune.core.glue.GlueExample>> rows = sc.broadcast(examples);
    int maxLen = config.maxSeqLength();
    sc.setJobDescription("read and tokenize " + data.source());
    List<Integer> indices = new ArrayList<>();
    for (int i = 0; i < partitions; i++) {
      indices.add(i);
    }
    trainShards = sc.parallelize(indices, partitions)
        .map(index -> {
          List<io.capprune.core.glue.GlueExample> all = rows.value();
          // The same slices parallelize would cut: contiguous, sizes differing by at most one.
          int from = (int) ((long) index * all.size() / partitions);
          int to = (int) ((long) (index + 1) * all.size() / partitions);
          List<EncodedExample> enc = GlueFiles.encode(all.subList(from, to), tok.value(), maxLen);
          return new Shard(index, enc.toArray(EncodedExample[]::new), null);
        })
        .persist(StorageLevel.MEMORY_ONLY());
    trainShards.count();
    rows.unpersist(false);
    trainSize = data.size();
    // the cached shards hold the examples now
    trainData = null;
    LOG.info("training set: {} examples from {} in {} partitions", trainSize, data.source(), partitions);
    return trainShards;
  }

  private int partitions() {
    return config.spark().partitions() > 0 ? config.spark().partitions() : sc.defaultParallelism();
  }

  /** Teacher logits and FiC vectors, and PrC vectors of the pre-trained model, once (decision 5). */
  JavaRDD<Shard> withBanks(JavaRDD<Shard> shards, HfCheckpoint teacher,
      LinkedHashMap<String, HostTensor> pretrainedWeights, CapLossConfig loss) {
    TaskSettings ws = workerSettings();
    Representation.Mode mode = loss.representation();
    Broadcast<LinkedHashMap<String, HostTensor>> teacherB = sc.broadcast(new LinkedHashMap<>(teacher.tensors()));
    boolean contrastive = loss.contrastive();
    boolean pre = contrastive && loss.uses(Kind.PRE);
    boolean fine = contrastive && loss.uses(Kind.FINE);
    Broadcast<LinkedHashMap<String, HostTensor>> preB = pre ? sc.broadcast(pretrainedWeights) : null;
    EncodeTask teacherTask = new EncodeTask(ws, teacherB, false, mode, config.seed());
    EncodeTask preTask = pre ? new EncodeTask(ws, preB, false, mode, config.seed()) : null;
    int numClasses = modelConfig.numLabels();
    int hidden = modelConfig.hiddenSize();
    long n = trainSize;
    boolean regression = task.isRegression();
    sc.setJobDescription("banks: teacher logits" + (fine ? ", FiC" : "") + (pre ? ", PrC" : ""));
    JavaRDD<Shard> next = shards.map(shard -> {
      Encoder.Encoded t = teacherTask.run(shard.examples(), shard.partition());
      int[] labels = null;
      if (!regression) {
        labels = new int[shard.size()];
        for (int i = 0; i < labels.length; i++) {
          labels[i] = shard.example(i).label();
        }
      }
      RepresentationBank bank = new RepresentationBank(shard.globalIndices(), labels, t.logits(),
          numClasses, hidden, n);
      if (fine) {
        bank.addSlice(Kind.FINE, t.vectors());
      }
      if (preTask != null) {
        bank.addSlice(Kind.PRE, preTask.run(shard.examples(), shard.partition()).vectors());
      }
      return shard.withBank(bank);
    }).persist(StorageLevel.MEMORY_ONLY());
    long t0 = System.nanoTime();
    next.count();
    LOG.info("banks built in {} s: teacher logits{}{}", String.format("%.1f", (System.nanoTime() - t0) / 1e9),
        fine ? ", FiC" : "", pre ? ", PrC" : "");
    return next;
  }

  /**
   * Adds the student's current vectors as a new SnC slice. The reference encodes unstructured
   * snapshots in train mode (dropout on) and structured ones in eval mode (cap-reference 1.2).
   *
   * @param training dropout on while encoding
   */
  JavaRDD<Shard> withSnapshotSlice(JavaRDD<Shard> shards, LinkedHashMap<String, HostTensor> weights,
      boolean training) {
    Broadcast<LinkedHashMap<String, HostTensor>> w = sc.broadcast(weights);
    EncodeTask snap = new EncodeTask(workerSettings(), w, training, lossConfig().representation(),
        config.seed() + 17);
    sc.setJobDescription("SnC snapshot slice");
    JavaRDD<Shard> next = shards.map(shard -> {
      RepresentationBank bank = shard.bank().copy();
      bank.addSlice(Kind.SNAP, snap.run(shard.examples(), shard.partition()).vectors());
      return shard.withBank(bank);
    }).persist(StorageLevel.MEMORY_ONLY());
    next.count();
    shards.unpersist(false);
    return next;
  }

  private List<DevSplit> devSplits() {
    if (devSplits != null) {
      return devSplits;
    }
    devSplits = new ArrayList<>();
    Broadcast<BertTokenizer> tok = sc.broadcast(tokenizer);
    int maxLen = config.maxSeqLength();
    for (GlueData data : devData) {
      String split = data.split();
      List<EncodedExample> enc = GlueFiles.encode(data.examples(), tok.value(), maxLen);
      int parts = Math.max(1, Math.min(partitions(), enc.size()));
      JavaRDD<EncodedExample[]> rdd = sc.parallelize(enc, parts)
          .glom().map(l -> l.toArray(EncodedExample[]::new)).persist(StorageLevel.MEMORY_ONLY());
      devSplits.add(new DevSplit(split, rdd, data.labelIds(), data.scores()));
    }
    return devSplits;
  }

  /** Dev metrics of a model given by its (effective) weights. */
  Map<String, Double> evaluateWeights(LinkedHashMap<String, HostTensor> weights) {
    Broadcast<LinkedHashMap<String, HostTensor>> w = sc.broadcast(weights);
    EncodeTask predict = new EncodeTask(workerSettings(), w, false, Representation.Mode.POOLER, config.seed());
    Map<String, Double> all = new LinkedHashMap<>();
    List<DevSplit> splits = devSplits();
    for (DevSplit split : splits) {
      int c = modelConfig.numLabels();
      sc.setJobDescription("evaluate " + split.name());
      List<float[]> logitsByPart = split.partitions().map(part -> {
        Encoder.Encoded e = predict.run(part, 0);
        return e.logits();
      }).collect();
      List<EncodedExample[]> order = split.partitions().collect();
      int n = split.gold().length;
      float[] logits = new float[n * c];
      for (int p = 0; p < order.size(); p++) {
        EncodedExample[] part = order.get(p);
        float[] l = logitsByPart.get(p);
        for (int i = 0; i < part.length; i++) {
          System.arraycopy(l, i * c, logits, (int) part[i].globalIndex() * c, c);
        }
      }
      Map<String, Double> m;
      if (task.isRegression()) {
        m = GlueMetrics.compute(task, logits, split.goldScores());
      } else {
        int[] pred = new int[n];
        for (int i = 0; i < n; i++) {
          int best = 0;
          for (int k = 1; k < c; k++) {
            if (logits[i * c + k] > logits[i * c + best]) {
              best = k;
            }
          }
          pred[i] = best;
        }
        m = GlueMetrics.compute(task, pred, split.gold());
      }
      String prefix = splits.size() > 1 ? split.name() + "/" : "";
      m.forEach((k, v) -> all.put(prefix + k, v));
    }
    w.destroy();
    return all;
  }

  SnapshotStore.Snapshot finalSnapshot() {
    List<SnapshotStore.Snapshot> all = new SnapshotStore(storage, out.resolve(SNAPSHOTS_DIR)).committed();
    if (all.isEmpty() || !Boolean.TRUE.equals(all.get(all.size() - 1).state().get("final"))) {
      throw new IllegalStateException(out.resolve(SNAPSHOTS_DIR) + " holds no final snapshot: run the prune stage first");
    }
    return all.get(all.size() - 1);
  }

  void writeJson(Path path, Object value) {
    storage.writeString(path, io.capprune.spark.io.JsonFiles.pretty(value), true);
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> readJson(Path path) {
    if (!storage.exists(path)) {
      return Map.of();
    }
    try {
      return JSON.readValue(storage.readString(path), Map.class);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Double> doubles(Object o) {
    Map<String, Double> m = new LinkedHashMap<>();
    if (o instanceof Map<?, ?> map) {
      map.forEach((k, v) -> {
        if (v instanceof Number num) {
          m.put(String.valueOf(k), num.doubleValue());
        }
      });
    }
    return m;
  }

  /** cap.spark.exchange-precision: how weights and gradients travel in every training stage. */
  io.capprune.core.exchange.WirePrecision exchangePrecision() {
    return io.capprune.core.exchange.WirePrecision.parse("cap.spark.exchange-precision",
        config.spark().exchangePrecision());
  }

}
