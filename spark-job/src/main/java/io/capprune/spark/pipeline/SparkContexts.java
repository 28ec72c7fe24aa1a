package io.capprune.spark.pipeline;

import io.capprune.spark.config.ConfigValidationException;
import io.capprune.spark.config.JobConfig;
import java.util.HashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Creates the job's SparkContext: spark-submit's settings win, cap.spark.* fills the gaps. */
public final class SparkContexts {
  private static final Logger LOG = LoggerFactory.getLogger(SparkContexts.class);

  private SparkContexts() {}

  /** The Spark settings spark-submit gave this driver (system properties), as a map. */
  public static Map<String, String> submitted() {
    Map<String, String> m = new HashMap<>();
    for (scala.Tuple2<String, String> e : new SparkConf().getAll()) {
      m.put(e._1(), e._2());
    }
    return m;
  }

  /**
   * The GPU plan of this job under spark-submit's settings ({@link GpuPlan}), after checking the
   * serializer; throws a {@link ConfigValidationException} for a combination that cannot work.
   */
  public static GpuPlan plan(JobConfig config) {
    Map<String, String> spark = submitted();
    checkSerializer(spark);
    return GpuPlan.of(config, spark);
  }

  static final String JAVA_SERIALIZER = "org.apache.spark.serializer.JavaSerializer";

  /**
   * The exchange's objects (gradient buffers, packed weights, mask bits) define their own Java
   * serialisation: fp16 halves and bits written as raw bytes. Kryo would not call it, and Spark's
   * Kryo cannot create the job's record types at all, so a Kryo run would fail at its first
   * training step; it is refused here, before anything is read.
   */
  static void checkSerializer(Map<String, String> spark) {
    String serializer = spark.get("spark.serializer");
    if (serializer != null && !serializer.equals(JAVA_SERIALIZER)) {
      throw new ConfigValidationException(
          "spark.serializer",
          "is "
              + serializer
              + ", but the training exchange ships gradients, weights and masks in their own compact "
              + "Java serialisation (fp16 halves and mask bits written in bulk), which other serializers "
              + "do not call (Spark's Kryo fails on the job's record types at the first step); remove "
              + "the setting or set it to "
              + JAVA_SERIALIZER);
    }
  }

  public static JavaSparkContext create(JobConfig config, String appName) {
    SparkConf conf =
        new SparkConf()
            .setIfMissing("spark.master", config.spark().master())
            .setIfMissing("spark.app.name", appName)
            // DJL must never download: offline on executors too, whoever launched the job.
            .setIfMissing("spark.executorEnv.DJL_OFFLINE", "true")
            .setIfMissing(
                "spark.executor.extraJavaOptions",
                "-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch")
            .setIfMissing("spark.ui.showConsoleProgress", "false")
            // Gradients and weights are large; Spark's default 1 GB limit on collected results is
            // not
            // about them (treeAggregate results), but a step's broadcast must fit in executor
            // memory.
            .setIfMissing("spark.driver.maxResultSize", "4g");
    checkSerializer(toMap(conf));
    GpuPlan plan = GpuPlan.of(config, toMap(conf));
    // The cached shards stay where the first job puts them; if that job starts before every
    // executor registered, all training runs on the few that had. Wait for all of them, longer
    // with GPUs (GPU pods pull large images): cap.spark.registration-*. With GPUs and
    // cap.spark.partitions = 0, spark.default.parallelism = the executors: one shard per GPU.
    plan.sparkDefaults().forEach(conf::setIfMissing);
    if (conf.get("spark.master").startsWith("local")) {
      conf.setIfMissing("spark.driver.host", "127.0.0.1").setIfMissing("spark.ui.enabled", "false");
    }
    JavaSparkContext sc = new JavaSparkContext(conf);
    sc.setLogLevel("WARN");
    if (plan.gpus()) {
      try {
        checkExecutors(sc, config, plan);
      } catch (RuntimeException e) {
        sc.close();
        throw e;
      }
    }
    return sc;
  }

  /** GPU runs: after Spark's registration wait, the executors that came against those asked for. */
  private static void checkExecutors(JavaSparkContext sc, JobConfig config, GpuPlan plan) {
    int registered = registeredExecutors(sc);
    plan.checkRegistered(config.spark().partitions(), registered);
    String waited = sc.getConf().get(GpuPlan.MAX_WAIT, "?");
    if (plan.executors() > 0 && registered < plan.executors()) {
      LOG.warn(
          "only {} of {} GPU executors registered within {} ({}); the training set is cut for {}, so "
              + "some executors will run two partitions one after the other until the others come; raise "
              + "cap.spark.registration-max-wait-gpu if executors start slowly (large images)",
          registered,
          plan.executors(),
          waited,
          GpuPlan.MAX_WAIT,
          plan.executors());
    } else {
      LOG.info(
          "GPU executors: {} registered{}; training partitions: {}",
          registered,
          plan.executors() > 0 ? " of " + plan.executors() : "",
          config.spark().partitions() > 0 ? config.spark().partitions() : sc.defaultParallelism());
    }
  }

  /** Executors registered with the driver, the driver itself not counted. */
  public static int registeredExecutors(JavaSparkContext sc) {
    int n = 0;
    for (org.apache.spark.SparkExecutorInfo e : sc.statusTracker().getExecutorInfos()) {
      n++;
    }
    // getExecutorInfos lists the driver too; in local mode the driver is the only executor.
    return sc.isLocal() ? 1 : Math.max(0, n - 1);
  }

  private static Map<String, String> toMap(SparkConf conf) {
    Map<String, String> m = new HashMap<>();
    for (scala.Tuple2<String, String> e : conf.getAll()) {
      m.put(e._1(), e._2());
    }
    return m;
  }
}
