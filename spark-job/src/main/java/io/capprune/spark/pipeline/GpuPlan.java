package io.capprune.spark.pipeline;

import io.capprune.spark.config.ConfigValidationException;
import io.capprune.spark.config.JobConfig;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How the job uses GPUs, decided on the driver from the job's configuration and the Spark settings
 * spark-submit gave, before the SparkContext exists (so a bad combination stops the job before any
 * executor starts, let alone any training).
 *
 * <p>GPUs are used when Spark schedules them for tasks ({@code spark.task.resource.gpu.amount} > 0,
 * what the deploy/ wrappers' {@code --gpus} sets) and {@code cap.worker.use-gpu} is not false.
 * Then: one GPU per executor and per task; the training set is cut into one partition per executor
 * by default ({@code cap.spark.partitions = 0}), and more partitions than executors is refused: a
 * second partition on an executor would wait for the first (one DJL worker per JVM) while its GPU
 * has nothing else to do. {@code cap.worker.use-gpu = true} where Spark schedules no GPU is refused
 * instead of running on the CPU.
 *
 * @param gpus whether tasks run on GPUs
 * @param executors the executors the application asked for (spark.executor.instances, or
 *     spark.cores.max / spark.executor.cores on a standalone cluster); 0 when unknown
 * @param sparkDefaults settings the job adds to the SparkConf where spark-submit did not set them
 */
public record GpuPlan(boolean gpus, int executors, Map<String, String> sparkDefaults) {

  public static final String TASK_GPUS = "spark.task.resource.gpu.amount";
  public static final String EXECUTOR_GPUS = "spark.executor.resource.gpu.amount";
  public static final String MIN_RATIO = "spark.scheduler.minRegisteredResourcesRatio";
  public static final String MAX_WAIT = "spark.scheduler.maxRegisteredResourcesWaitingTime";

  public GpuPlan {
    sparkDefaults = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(sparkDefaults));
  }

  /** The plan for {@code config} under the Spark settings {@code spark} (spark-submit's). */
  public static GpuPlan of(JobConfig config, Map<String, String> spark) {
    JobConfig.SparkSettings s = config.spark();
    return of(
        config.worker().useGpuMode(),
        s.partitions(),
        s.master(),
        s.registrationMinRatio(),
        s.registrationMaxWait(),
        s.registrationMaxWaitGpu(),
        spark);
  }

  /**
   * @param useGpu cap.worker.use-gpu: auto, true or false
   * @param partitions cap.spark.partitions (0: the default)
   * @param master cap.spark.master, used when spark-submit set no spark.master
   * @throws ConfigValidationException naming the key of a combination that cannot work
   */
  static GpuPlan of(
      String useGpu,
      int partitions,
      String master,
      double minRatio,
      String maxWait,
      String maxWaitGpu,
      Map<String, String> spark) {
    String effectiveMaster = spark.getOrDefault("spark.master", master);
    boolean local = effectiveMaster.startsWith("local");
    double taskGpus = number(spark, TASK_GPUS);
    if (local && taskGpus > 0) {
      throw new ConfigValidationException(
          TASK_GPUS,
          "is "
              + spark.get(TASK_GPUS)
              + " but Spark local mode ("
              + effectiveMaster
              + ") never assigns GPUs to tasks, so every task would wait forever; run a one-node "
              + "standalone cluster whose worker offers the GPUs (deploy/spark-submit-standalone.sh --gpus)");
    }
    if (useGpu.equals("true") && taskGpus <= 0) {
      throw new ConfigValidationException(
          "cap.worker.use-gpu",
          "is true but Spark assigns no GPU to tasks ("
              + (local
                  ? "Spark local mode (" + effectiveMaster + ") never does"
                  : TASK_GPUS + " is not set: submit with the deploy/ wrappers' --gpus")
              + "); the job does not fall back to the CPU: set cap.worker.use-gpu = auto to use GPUs only where "
              + "Spark schedules them");
    }
    boolean gpus = taskGpus > 0 && !useGpu.equals("false");
    Map<String, String> defaults = new LinkedHashMap<>();
    defaults.put(MIN_RATIO, Double.toString(minRatio));
    defaults.put(MAX_WAIT, gpus ? maxWaitGpu : maxWait);
    int executors = expectedExecutors(spark);
    if (!gpus) {
      return new GpuPlan(false, executors, defaults);
    }
    if (taskGpus != 1) {
      throw new ConfigValidationException(
          TASK_GPUS,
          "is "
              + spark.get(TASK_GPUS)
              + "; the job needs exactly 1 "
              + "(one task per GPU: DJL allows one training pass per JVM)");
    }
    double executorGpus = number(spark, EXECUTOR_GPUS);
    if (executorGpus != 1) {
      throw new ConfigValidationException(
          EXECUTOR_GPUS,
          "is "
              + spark.getOrDefault(EXECUTOR_GPUS, "unset")
              + "; the job needs exactly 1 (one task per executor JVM, one GPU per task)");
    }
    if (Boolean.parseBoolean(spark.getOrDefault("spark.dynamicAllocation.enabled", "false"))) {
      throw new ConfigValidationException(
          "spark.dynamicAllocation.enabled",
          "is true; with GPUs the job keeps "
              + "one shard per executor for its whole run, so the executors must be fixed: set it to false "
              + "(the deploy/ wrappers do with --gpus) and give --num-executors");
    }
    String parallelism = spark.get("spark.default.parallelism");
    if (partitions > 0) {
      if (executors > 0 && partitions > executors) {
        throw tooManyPartitions(partitions, executors);
      }
    } else if (parallelism != null) {
      int p = (int) number(spark, "spark.default.parallelism");
      if (executors > 0 && p > executors) {
        throw new ConfigValidationException(
            "cap.spark.partitions",
            "is 0, so the training set takes "
                + "spark.default.parallelism = "
                + p
                + " partitions, but there are "
                + executors
                + " GPU executors: "
                + "with GPUs each partition is one task on one executor's GPU; drop spark.default.parallelism "
                + "or set cap.spark.partitions to at most "
                + executors);
      }
    } else if (executors > 0) {
      // TokenizedData cuts the training set into sc.defaultParallelism() partitions when
      // cap.spark.partitions is 0: one per GPU executor, not one per core.
      defaults.put("spark.default.parallelism", Integer.toString(executors));
    } else {
      throw new ConfigValidationException(
          "cap.spark.partitions",
          "is 0 (one partition per GPU executor) but the "
              + "number of executors is unknown: set spark.executor.instances (--num-executors; on a standalone "
              + "cluster --total-executor-cores with --executor-cores, as the deploy/ wrappers do), or set "
              + "cap.spark.partitions to the number of GPU executors");
    }
    return new GpuPlan(true, executors, defaults);
  }

  /**
   * After the executors registered: with GPUs and an executor count spark-submit did not state,
   * more partitions than registered executors is refused here.
   */
  public void checkRegistered(int configuredPartitions, int registeredExecutors) {
    if (gpus && executors == 0 && configuredPartitions > registeredExecutors) {
      throw tooManyPartitions(configuredPartitions, registeredExecutors);
    }
  }

  private static ConfigValidationException tooManyPartitions(int partitions, int executors) {
    return new ConfigValidationException(
        "cap.spark.partitions",
        partitions
            + " partitions but "
            + executors
            + " GPU executor"
            + (executors == 1 ? "" : "s")
            + ": with GPUs each partition is one task on one executor's GPU, and a "
            + "second partition on an executor would wait for the first while the GPU idles; set it to at most "
            + executors
            + ", or to 0 for one partition per executor");
  }

  /** The executors the application asked for; 0 when spark-submit did not say. */
  static int expectedExecutors(Map<String, String> spark) {
    int instances = (int) number(spark, "spark.executor.instances");
    if (instances > 0) {
      return instances;
    }
    int coresMax = (int) number(spark, "spark.cores.max");
    int cores = (int) number(spark, "spark.executor.cores");
    if (coresMax > 0 && cores > 0) {
      return coresMax / cores;
    }
    return 0;
  }

  private static double number(Map<String, String> spark, String key) {
    String v = spark.get(key);
    if (v == null || v.isBlank()) {
      return 0;
    }
    try {
      return Double.parseDouble(v.trim());
    } catch (NumberFormatException e) {
      throw new ConfigValidationException(key, "expected a number, got '" + v + "'");
    }
  }
}
