package io.capprune.spark.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.spark.config.ConfigValidationException;
import io.capprune.spark.config.JobConfig;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The GPU plan against spark-submit's settings: partitions, executors, registration wait, refusals.
 */
class GpuPlanTest {

  /** What deploy/spark-submit-yarn.sh --gpus --executors N sets. */
  private static Map<String, String> yarnGpus(int executors) {
    Map<String, String> m = new HashMap<>();
    m.put("spark.master", "yarn");
    m.put("spark.executor.instances", Integer.toString(executors));
    m.put("spark.executor.cores", "8");
    m.put("spark.task.cpus", "8");
    m.put("spark.executor.resource.gpu.amount", "1");
    m.put("spark.task.resource.gpu.amount", "1");
    m.put("spark.dynamicAllocation.enabled", "false");
    return m;
  }

  private static GpuPlan plan(String useGpu, int partitions, Map<String, String> spark) {
    return GpuPlan.of(useGpu, partitions, "local[2]", 1.0, "60s", "15min", spark);
  }

  @Test
  void partitionsDefaultToOnePerGpuExecutorAndTheWaitIsTheGpuOne() {
    GpuPlan p = plan("auto", 0, yarnGpus(4));
    assertTrue(p.gpus());
    assertEquals(4, p.executors());
    assertEquals(
        "4",
        p.sparkDefaults().get("spark.default.parallelism"),
        "TokenizedData takes sc.defaultParallelism() partitions when cap.spark.partitions is 0");
    assertEquals("15min", p.sparkDefaults().get(GpuPlan.MAX_WAIT));
    assertEquals("1.0", p.sparkDefaults().get(GpuPlan.MIN_RATIO));
  }

  @Test
  void onAStandaloneClusterTheExecutorsAreTotalCoresOverExecutorCores() {
    Map<String, String> m = yarnGpus(4);
    m.remove("spark.executor.instances");
    m.put("spark.master", "spark://m:7077");
    m.put("spark.cores.max", "24");
    GpuPlan p = plan("auto", 0, m);
    assertEquals(3, p.executors());
    assertEquals("3", p.sparkDefaults().get("spark.default.parallelism"));
  }

  @Test
  void morePartitionsThanGpuExecutorsIsRefusedNamingTheKey() {
    ConfigValidationException e =
        assertThrows(ConfigValidationException.class, () -> plan("auto", 8, yarnGpus(4)));
    assertEquals("cap.spark.partitions", e.key());
    assertTrue(e.getMessage().contains("8 partitions but 4 GPU executors"), e.getMessage());
    // fewer is allowed (idle GPUs are the operator's choice), and no default parallelism is forced
    GpuPlan fewer = plan("auto", 2, yarnGpus(4));
    assertTrue(fewer.gpus());
    assertNull(fewer.sparkDefaults().get("spark.default.parallelism"));
    assertEquals(4, plan("auto", 4, yarnGpus(4)).executors());
    // spark.default.parallelism given to spark-submit is what partitions = 0 would take
    Map<String, String> par = yarnGpus(4);
    par.put("spark.default.parallelism", "32");
    ConfigValidationException viaDefault =
        assertThrows(ConfigValidationException.class, () -> plan("auto", 0, par));
    assertEquals("cap.spark.partitions", viaDefault.key());
    assertTrue(
        viaDefault.getMessage().contains("spark.default.parallelism = 32"),
        viaDefault.getMessage());
  }

  @Test
  void withoutGpusNothingChangesForPartitions() {
    Map<String, String> cpu = yarnGpus(4);
    cpu.remove("spark.task.resource.gpu.amount");
    cpu.remove("spark.executor.resource.gpu.amount");
    GpuPlan p = plan("auto", 16, cpu);
    assertFalse(p.gpus());
    assertNull(p.sparkDefaults().get("spark.default.parallelism"));
    assertEquals("60s", p.sparkDefaults().get(GpuPlan.MAX_WAIT));
    // use-gpu = false on a GPU cluster: the CPU, and the CPU rules
    GpuPlan off = plan("false", 16, yarnGpus(4));
    assertFalse(off.gpus());
    assertFalse(plan("auto", 0, Map.of()).gpus(), "bin/cap-prune: local mode, nothing scheduled");
  }

  @Test
  void useGpuTrueWhereSparkSchedulesNoGpuIsRefusedBeforeTheJobStarts() {
    ConfigValidationException local =
        assertThrows(ConfigValidationException.class, () -> plan("true", 0, Map.of()));
    assertEquals("cap.worker.use-gpu", local.key());
    assertTrue(local.getMessage().contains("local mode"), local.getMessage());
    Map<String, String> cpu = yarnGpus(4);
    cpu.remove("spark.task.resource.gpu.amount");
    ConfigValidationException cluster =
        assertThrows(ConfigValidationException.class, () -> plan("true", 0, cpu));
    assertEquals("cap.worker.use-gpu", cluster.key());
    assertTrue(
        cluster.getMessage().contains("spark.task.resource.gpu.amount is not set")
            && cluster.getMessage().contains("--gpus"),
        cluster.getMessage());
    assertTrue(plan("true", 0, yarnGpus(2)).gpus());
  }

  @Test
  void combinationsThatCannotWorkAreRefusedNamingTheSparkKey() {
    Map<String, String> local =
        new HashMap<>(Map.of("spark.master", "local[4]", "spark.task.resource.gpu.amount", "1"));
    assertEquals(
        "spark.task.resource.gpu.amount",
        assertThrows(ConfigValidationException.class, () -> plan("auto", 0, local)).key(),
        "local mode never assigns GPUs: the tasks would wait forever");
    Map<String, String> two = yarnGpus(4);
    two.put("spark.executor.resource.gpu.amount", "2");
    assertEquals(
        "spark.executor.resource.gpu.amount",
        assertThrows(ConfigValidationException.class, () -> plan("auto", 0, two)).key());
    Map<String, String> half = yarnGpus(4);
    half.put("spark.task.resource.gpu.amount", "0.5");
    assertEquals(
        "spark.task.resource.gpu.amount",
        assertThrows(ConfigValidationException.class, () -> plan("auto", 0, half)).key());
    Map<String, String> dynamic = yarnGpus(4);
    dynamic.put("spark.dynamicAllocation.enabled", "true");
    assertEquals(
        "spark.dynamicAllocation.enabled",
        assertThrows(ConfigValidationException.class, () -> plan("auto", 0, dynamic)).key());
    Map<String, String> unknown = yarnGpus(4);
    unknown.remove("spark.executor.instances");
    ConfigValidationException u =
        assertThrows(ConfigValidationException.class, () -> plan("auto", 0, unknown));
    assertEquals("cap.spark.partitions", u.key());
    assertTrue(u.getMessage().contains("number of executors is unknown"), u.getMessage());
  }

  @Test
  void withAnUnstatedExecutorCountThePartitionsAreCheckedAgainstThoseThatRegistered() {
    Map<String, String> m = yarnGpus(4);
    m.remove("spark.executor.instances");
    GpuPlan p = plan("auto", 3, m);
    p.checkRegistered(3, 3);
    ConfigValidationException e =
        assertThrows(ConfigValidationException.class, () -> p.checkRegistered(3, 2));
    assertTrue(e.getMessage().contains("3 partitions but 2 GPU executors"), e.getMessage());
  }

  @Test
  void theJobConfigurationFeedsThePlan() {
    JobConfig config =
        JobConfig.load(
            null,
            List.of(
                "spark.partitions=5",
                "spark.registration-max-wait-gpu=20min",
                "spark.registration-min-ratio=0.75"));
    assertEquals("auto", config.worker().useGpuMode());
    ConfigValidationException e =
        assertThrows(ConfigValidationException.class, () -> GpuPlan.of(config, yarnGpus(4)));
    assertEquals("cap.spark.partitions", e.key());
    JobConfig four =
        JobConfig.load(
            null,
            List.of("spark.registration-max-wait-gpu=20min", "spark.registration-min-ratio=0.75"));
    GpuPlan p = GpuPlan.of(four, yarnGpus(4));
    assertEquals("20min", p.sparkDefaults().get(GpuPlan.MAX_WAIT));
    assertEquals("0.75", p.sparkDefaults().get(GpuPlan.MIN_RATIO));
    ConfigValidationException badTime =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("spark.registration-max-wait=soon")));
    assertEquals("cap.spark.registration-max-wait", badTime.key());
    ConfigValidationException badMode =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("worker.use-gpu=sometimes")));
    assertEquals("cap.worker.use-gpu", badMode.key());
    assertTrue(JobConfig.load(null, List.of("worker.use-gpu=true")).worker().useGpu());
    assertFalse(JobConfig.load(null, List.of("worker.use-gpu=false")).worker().useGpu());
  }
}
