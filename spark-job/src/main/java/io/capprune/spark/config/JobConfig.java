package io.capprune.spark.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigSyntax;
import com.typesafe.config.ConfigValueFactory;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import java.io.File;
import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The job's whole configuration, read from HOCON and validated before any Spark work starts.
 * Layers, later wins: {@code conf/reference.conf}, the task preset {@code conf/tasks/<task>.conf},
 * a file given with {@code --config}, then {@code --conf key=value} overrides.
 */
public record JobConfig(
    String task,
    String dataDir,
    String model,
    String teacher,
    String output,
    boolean overwrite,
    boolean resume,
    int maxSeqLength,
    boolean dynamicPadding,
    List<String> labels,
    boolean skipBadRows,
    int maxTrainExamples,
    int maxDevExamples,
    long seed,
    SparkSettings spark,
    WorkerSettings worker,
    FinetuneSettings finetune,
    PruneSettings prune,
    LossSettings loss,
    StructuredSettings structured,
    int logEverySteps,
    S3Settings s3,
    String rendered)
    implements Serializable {

  public static final Set<String> TASKS =
      Set.of("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli");
  public static final Set<String> REPRESENTATIONS = Set.of("pooler", "cls", "mean");
  public static final Set<String> MODULES = Set.of("prc", "snc", "fic");

  /**
   * @param exchangePrecision fp32 or fp16: weights down and gradients up on the wire
   * @param registrationMinRatio spark.scheduler.minRegisteredResourcesRatio unless spark-submit set
   *     it
   * @param registrationMaxWait spark.scheduler.maxRegisteredResourcesWaitingTime without GPUs
   * @param registrationMaxWaitGpu the same when tasks run on GPUs
   * @param updateOn driver (the driver keeps the state and applies the summed gradients) or
   *     executor (the one executor keeps it and updates it where it computes the gradient; needs
   *     one partition)
   */
  public record SparkSettings(
      String master,
      int partitions,
      int aggregateDepth,
      String exchangePrecision,
      double registrationMinRatio,
      String registrationMaxWait,
      String registrationMaxWaitGpu,
      String updateOn)
      implements Serializable {
    public static final Set<String> UPDATE_ON = Set.of("driver", "executor");

    public boolean updateOnExecutor() {
      return updateOn.equals("executor");
    }
  }

  /**
   * @param useGpuMode cap.worker.use-gpu: auto, true or false
   * @param computePrecision cap.worker.compute-precision: fp32 (bf16 is refused, see {@link
   *     #computePrecision(ConfigReader)})
   */
  public record WorkerSettings(
      int microBatchSize, int threads, String useGpuMode, String computePrecision)
      implements Serializable {
    public static final Set<String> GPU_MODES = Set.of("auto", "true", "false");

    /** Whether tasks may use a GPU Spark assigns (auto or true); see GpuPlan for when they must. */
    public boolean useGpu() {
      return !useGpuMode.equals("false");
    }
  }

  /**
   * The worker's number type. bf16 is refused here, before Spark starts: DJL 0.35.1's PyTorch JNI
   * maps no data type to torch's bfloat16 and aborts the JVM on the first bf16 tensor (see
   * io.capprune.core.tensor.NDArrays#BFLOAT16_UNSUPPORTED).
   */
  private static String computePrecision(ConfigReader wk) {
    String p = wk.oneOf("compute-precision", Set.of("fp32", "bf16"));
    if (p.equals("bf16")) {
      throw new ConfigValidationException(
          "cap.worker.compute-precision",
          "bf16 is not supported:"
              + " DJL 0.35.1's PyTorch JNI has no bfloat16 type and aborts the JVM on the first bf16"
              + " tensor (CPU and GPU alike); use fp32");
    }
    return p;
  }

  private static final Pattern SPARK_TIME = Pattern.compile("[0-9]+(ms|s|m|min|h|d)");

  /** A time in Spark's format (60s, 15min, 1h), passed to Spark as it is. */
  private static String sparkTime(ConfigReader r, String path) {
    String v = r.string(path).trim();
    if (!SPARK_TIME.matcher(v).matches()) {
      throw new ConfigValidationException(
          r.key(path), "expected a time like 60s, 15min or 1h, got '" + v + "'");
    }
    return v;
  }

  public record FinetuneSettings(
      int epochs,
      int batchSize,
      double learningRate,
      double warmupRatio,
      double weightDecay,
      double maxGradNorm)
      implements Serializable {}

  public record PruneSettings(
      PruneMethod method,
      int epochs,
      int batchSize,
      double learningRate,
      double scoreLearningRate,
      double weightDecay,
      double adamEpsilon,
      double maxGradNorm,
      int warmupSteps,
      double warmupFraction,
      int initialWarmup,
      int finalWarmup,
      double finalThreshold,
      double initialThreshold,
      double softInitialThreshold,
      double softFinalThreshold,
      double finalLambda,
      boolean globalTopk,
      boolean freezeEmbeddings,
      int snapshotEveryEpochs,
      double scoreInitMagnitude)
      implements Serializable {}

  /**
   * cap.structured: the CAP-f sequence (docs/cap-math.md §3.6). Retraining uses cap.prune's batch
   * size, learning rate, weight decay, epsilon and clipping.
   */
  public record StructuredSettings(
      List<Double> headFractions,
      List<Double> neuronFractions,
      int retrainEpochs,
      double warmupRatio,
      int importanceBatchSize,
      boolean normalizeByLayer,
      boolean freezeEmbeddings,
      String exportFfn)
      implements Serializable {
    public static final Set<String> FFN_LAYOUTS = Set.of("per-layer", "padded");

    /** Whether the export pads every layer's FFN to the widest one (one intermediate_size). */
    public boolean padFfn() {
      return exportFfn.equals("padded");
    }
  }

  public record LossSettings(
      double ceWeight,
      double kdWeight,
      double kdTemperature,
      double contrastiveTemperature,
      double unsupervisedWeight,
      double supervisedWeight,
      int extraExamples,
      String representation,
      List<String> modules,
      String regressionDistillation)
      implements Serializable {
    public static final Set<String> REGRESSION_DISTILLATION = Set.of("none", "mse");

    /** Whether regression tasks distil by MSE between student and teacher outputs. */
    public boolean regressionMse() {
      return regressionDistillation.equals("mse");
    }
  }

  public record S3Settings(
      String endpoint, String region, boolean pathStyleAccess, String accessKey, String secretKey)
      implements Serializable {

    @Override
    public String toString() {
      return "S3Settings[endpoint="
          + endpoint
          + ", region="
          + region
          + ", pathStyleAccess="
          + pathStyleAccess
          + ", accessKey="
          + mask(accessKey)
          + ", secretKey="
          + mask(secretKey)
          + "]";
    }
  }

  /**
   * Builds the layered configuration. {@code overrides} are "key=value" strings; keys may omit
   * "cap.".
   */
  public static JobConfig load(File configFile, List<String> overrides) {
    Config reference =
        ConfigFactory.parseResources(
            JobConfig.class.getClassLoader(),
            "capprune/reference.conf",
            ConfigParseOptions.defaults().setAllowMissing(false));
    Config user = parseOverrides(overrides);
    if (configFile != null) {
      if (!configFile.isFile()) {
        throw new ConfigValidationException("--config", "no such file: " + configFile);
      }
      user =
          user.withFallback(
              ConfigFactory.parseFile(
                  configFile, ConfigParseOptions.defaults().setAllowMissing(false)));
    }
    Config withRef = user.withFallback(reference);
    String task = new ConfigReader(withRef, "cap").oneOf("task", TASKS);
    Config preset =
        ConfigFactory.parseResources(
            JobConfig.class.getClassLoader(), "capprune/tasks/" + task + ".conf");
    Config full =
        user.withFallback(preset)
            .withFallback(methodDefaults(user.withFallback(preset), reference))
            .withFallback(reference)
            .resolve();
    return from(full);
  }

  /** The top-level section of reference.conf that holds the structured methods' defaults. */
  public static final String STRUCTURED_DEFAULTS = "structured-method-defaults";

  /**
   * The reference's CAP-f values (reference.conf's {@value #STRUCTURED_DEFAULTS}) when the chosen
   * method is structured, else nothing. They sit under the task preset and the user's keys, over
   * the unstructured defaults: a key the user (or the preset) sets still wins.
   */
  static Config methodDefaults(Config given, Config reference) {
    String name =
        given.withFallback(reference).hasPath("cap.prune.method")
            ? given.withFallback(reference).getValue("cap.prune.method").unwrapped().toString()
            : "";
    boolean structured;
    try {
      structured = PruneMethod.fromConfigName(name).structured();
    } catch (IllegalArgumentException e) {
      return ConfigFactory.empty(); // from() reports the bad name with its key
    }
    return structured && reference.hasPath(STRUCTURED_DEFAULTS)
        ? reference.getConfig(STRUCTURED_DEFAULTS)
        : ConfigFactory.empty();
  }

  static Config parseOverrides(List<String> overrides) {
    Config c = ConfigFactory.empty();
    for (String o : overrides) {
      int eq = o.indexOf('=');
      if (eq <= 0) {
        throw new ConfigValidationException(o, "expected key=value after --conf");
      }
      String key = o.substring(0, eq).trim();
      if (!key.startsWith("cap.")) {
        key = "cap." + key;
      }
      String value = o.substring(eq + 1).trim();
      // Parse the value as HOCON so lists and numbers keep their types; fall back to a plain
      // string.
      Config parsed;
      try {
        parsed =
            ConfigFactory.parseString(
                "v = " + value, ConfigParseOptions.defaults().setSyntax(ConfigSyntax.CONF));
      } catch (com.typesafe.config.ConfigException e) {
        parsed = ConfigFactory.empty().withValue("v", ConfigValueFactory.fromAnyRef(value));
      }
      c = parsed.getValue("v").atPath(key).withFallback(c);
    }
    return c;
  }

  /** Reads and validates every key; the first bad one is reported with its full name. */
  public static JobConfig from(Config full) {
    ConfigReader cap = new ConfigReader(full, "cap");
    Config known = full.withOnlyPath("cap");
    rejectUnknownKeys(
        known,
        ConfigFactory.parseResources(JobConfig.class.getClassLoader(), "capprune/reference.conf"));

    ConfigReader sp = cap.child("spark");
    ConfigReader wk = cap.child("worker");
    ConfigReader ft = cap.child("finetune");
    ConfigReader pr = cap.child("prune");
    ConfigReader ls = cap.child("loss");
    ConfigReader s3 = cap.child("s3");
    ConfigReader st = cap.child("structured");
    String updateOn = sp.oneOf("update-on", SparkSettings.UPDATE_ON);
    if (updateOn.equals("executor") && sp.intAtLeast("partitions", 0) != 1) {
      throw new ConfigValidationException(
          sp.key("update-on"),
          "executor keeps the training state on one executor and needs "
              + sp.key("partitions")
              + " = 1, got "
              + sp.intAtLeast("partitions", 0)
              + " (summing gradients among several executors is not implemented; use driver)");
    }

    PruneMethod method;
    try {
      method = PruneMethod.fromConfigName(pr.string("method"));
    } catch (IllegalArgumentException e) {
      throw new ConfigValidationException(pr.key("method"), e.getMessage());
    }
    List<String> modules = ls.strings("modules");
    for (String m : modules) {
      if (!MODULES.contains(m)) {
        throw new ConfigValidationException(
            ls.key("modules"), "'" + m + "' is not one of " + MODULES);
      }
    }
    PruneSettings prune =
        new PruneSettings(
            method,
            pr.intAtLeast("epochs", 1),
            pr.intAtLeast("batch-size", 1),
            pr.positive("learning-rate"),
            pr.positive("score-learning-rate"),
            pr.atLeast("weight-decay", 0),
            pr.positive("adam-epsilon"),
            pr.positive("max-grad-norm"),
            pr.intAtLeast("warmup-steps", 0),
            pr.closedUnit("warmup-fraction"),
            pr.intAtLeast("initial-warmup", 0),
            pr.intAtLeast("final-warmup", 0),
            pr.openUnit("final-threshold"),
            pr.closedUnit("initial-threshold"),
            pr.closedUnit("soft-initial-threshold"),
            pr.openUnit("soft-final-threshold"),
            pr.atLeast("final-lambda", 0),
            pr.bool("global-topk"),
            pr.bool("freeze-embeddings"),
            pr.intAtLeast("snapshot-every-epochs", 1),
            pr.atLeast("score-init-magnitude", 0));
    try {
      PruningConfig.checkMagnitudeScoreInit(
          method.criterion() == PruneMethod.Criterion.STRUCTURED
              ? PruningCriterion.FIXED
              : PruningCriterion.valueOf(method.criterion().name()),
          prune.scoreInitMagnitude());
    } catch (IllegalArgumentException e) {
      throw new ConfigValidationException(
          pr.key("score-init-magnitude"),
          e.getMessage() + " (method " + method.configName() + "); set it to 0");
    }
    if (prune.initialThreshold() < prune.finalThreshold()) {
      throw new ConfigValidationException(
          pr.key("initial-threshold"),
          "must be >= final-threshold "
              + prune.finalThreshold()
              + ", got "
              + prune.initialThreshold());
    }
    if (prune.warmupSteps() == 0 && prune.warmupFraction() == 0) {
      throw new ConfigValidationException(
          pr.key("warmup-fraction"), "must be > 0 when warmup-steps is 0");
    }

    StructuredSettings structured =
        new StructuredSettings(
            fractions(full, st.key("head-fractions")),
            fractions(full, st.key("neuron-fractions")),
            st.intAtLeast("retrain-epochs", 1),
            st.closedUnit("warmup-ratio"),
            st.intAtLeast("importance-batch-size", 1),
            st.bool("normalize-by-layer"),
            st.bool("freeze-embeddings"),
            st.oneOf("export-ffn", StructuredSettings.FFN_LAYOUTS));
    if (structured.headFractions().size() != structured.neuronFractions().size()) {
      throw new ConfigValidationException(
          st.key("neuron-fractions"),
          "has "
              + structured.neuronFractions().size()
              + " steps but head-fractions has "
              + structured.headFractions().size()
              + "; the sequence prunes both at every step");
    }
    try {
      new io.capprune.core.structured.PruneSequence(
          structured.headFractions(), structured.neuronFractions());
    } catch (IllegalArgumentException e) {
      throw new ConfigValidationException(st.key("head-fractions"), e.getMessage());
    }

    return new JobConfig(
        cap.oneOf("task", TASKS),
        cap.string("data-dir"),
        cap.string("model"),
        cap.string("teacher"),
        cap.string("output"),
        cap.bool("overwrite"),
        cap.bool("resume"),
        cap.intAtLeast("max-seq-length", 8),
        cap.bool("dynamic-padding"),
        cap.strings("labels"),
        cap.bool("skip-bad-rows"),
        cap.intAtLeast("max-train-examples", 0),
        cap.intAtLeast("max-dev-examples", 0),
        cap.longValue("seed"),
        new SparkSettings(
            sp.string("master"),
            sp.intAtLeast("partitions", 0),
            sp.intAtLeast("aggregate-depth", 1),
            sp.oneOf("exchange-precision", Set.of("fp32", "fp16")),
            sp.closedUnit("registration-min-ratio"),
            sparkTime(sp, "registration-max-wait"),
            sparkTime(sp, "registration-max-wait-gpu"),
            updateOn),
        new WorkerSettings(
            wk.intAtLeast("micro-batch-size", 1),
            wk.intAtLeast("threads", 0),
            wk.oneOf("use-gpu", WorkerSettings.GPU_MODES),
            computePrecision(wk)),
        new FinetuneSettings(
            ft.intAtLeast("epochs", 0),
            ft.intAtLeast("batch-size", 1),
            ft.positive("learning-rate"),
            ft.closedUnit("warmup-ratio"),
            ft.atLeast("weight-decay", 0),
            ft.positive("max-grad-norm")),
        prune,
        new LossSettings(
            ls.atLeast("ce-weight", 0),
            ls.atLeast("kd-weight", 0),
            ls.positive("kd-temperature"),
            ls.positive("contrastive-temperature"),
            ls.atLeast("unsupervised-weight", 0),
            ls.atLeast("supervised-weight", 0),
            ls.intAtLeast("extra-examples", 0),
            ls.oneOf("representation", REPRESENTATIONS),
            modules,
            ls.oneOf("regression-distillation", LossSettings.REGRESSION_DISTILLATION)),
        structured,
        cap.intAtLeast("log.every-steps", 1),
        new S3Settings(
            s3.string("endpoint"),
            s3.string("region"),
            s3.bool("path-style-access"),
            s3.string("access-key"),
            s3.string("secret-key")),
        renderMasked(known));
  }

  /** A non-empty list of fractions in [0, 1). */
  private static List<Double> fractions(Config full, String key) {
    List<Double> out;
    try {
      out = full.getDoubleList(key);
    } catch (com.typesafe.config.ConfigException e) {
      throw new ConfigValidationException(
          key, "expected a list of numbers, e.g. [0.1, 0.2]: " + e.getMessage());
    }
    if (out.isEmpty()) {
      throw new ConfigValidationException(key, "needs at least one pruning step");
    }
    for (double v : out) {
      if (!(v >= 0 && v < 1)) {
        throw new ConfigValidationException(key, "fractions must be in [0, 1), got " + v);
      }
    }
    return List.copyOf(out);
  }

  /**
   * A typo in a key would otherwise be silently ignored: every key must exist in reference.conf.
   */
  private static void rejectUnknownKeys(Config given, Config reference) {
    for (Map.Entry<String, com.typesafe.config.ConfigValue> e : given.entrySet()) {
      String key = e.getKey();
      if (!reference.hasPathOrNull(key)) {
        throw new ConfigValidationException(key, "unknown key (not in conf/reference.conf)");
      }
    }
  }

  private static final Pattern SECRET =
      Pattern.compile("(?i).*(secret|password|access-key|token|credential).*");

  /** The effective configuration as HOCON, with every secret-looking value replaced by ****. */
  static String renderMasked(Config c) {
    Config masked = c;
    for (Map.Entry<String, com.typesafe.config.ConfigValue> e : c.entrySet()) {
      if (SECRET.matcher(e.getKey()).matches()
          && !String.valueOf(e.getValue().unwrapped()).isEmpty()) {
        masked = masked.withValue(e.getKey(), ConfigValueFactory.fromAnyRef("****"));
      }
    }
    return masked.root().render(ConfigRenderOptions.concise().setFormatted(true).setJson(false));
  }

  static String mask(String secret) {
    return secret == null || secret.isEmpty() ? "" : "****";
  }

  /** Steps per epoch for a training set of n examples. */
  public static int stepsPerEpoch(long n, int batchSize) {
    return (int) ((n + batchSize - 1) / batchSize);
  }
}
