package io.capprune.core.prune;

import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.HostTensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Prints the mean wall time of {@link DriverUpdate#apply} on a BERT-base-sized state (12 layers,
 * hidden 768, FFN 3072, vocab 30522: 110 M parameters, 85 M prunable in 72 matrices) with random
 * gradients, after warm-up. Not a unit test: figures depend on the machine.
 *
 * <pre>
 * mvn -B -o -q -pl model-core test-compile
 * java -Xmx8g -cp model-core/target/classes:model-core/target/test-classes \
 *     io.capprune.core.prune.DriverUpdateBenchmark [runs] [MOVEMENT|MAGNITUDE|SOFT_MOVEMENT ...]
 * </pre>
 */
public final class DriverUpdateBenchmark {

  /** CPU time of all threads of this JVM (GC included): wall time on a busy machine says little. */
  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
        java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  public static void main(String[] args) {
    int runs = args.length > 0 ? Integer.parseInt(args[0]) : 10;
    String[] methods = args.length > 1
        ? java.util.Arrays.copyOfRange(args, 1, args.length) : new String[] {"MOVEMENT"};
    Map<String, int[]> shapes = ToyBert.shapes(12, 768, 3072, 30522, 2);
    System.out.printf("cores %d, max heap %d MB%n", Runtime.getRuntime().availableProcessors(),
        Runtime.getRuntime().maxMemory() >> 20);
    for (String name : methods) {
      PruningCriterion criterion = PruningCriterion.valueOf(name);
      LinkedHashMap<String, HostTensor> weights = ToyBert.random(shapes, 0.02, 1);
      // Three gradient sets in turn: with one fixed gradient Adam makes every score move by the same
      // amount each step, so the scores collapse onto two values, which is not a realistic state.
      List<LinkedHashMap<String, HostTensor>> gradSets = List.of(ToyBert.random(shapes, 1e-4, 2),
          ToyBert.random(shapes, 1e-4, 3), ToyBert.random(shapes, 1e-4, 4));
      long total = weights.values().stream().mapToLong(HostTensor::numel).sum();
      long totalSteps = 1000;
      // Mid-ramp schedule so every step recomputes a real top-k (dense phase would be a fill).
      SparsitySchedule schedule = criterion == PruningCriterion.SOFT_MOVEMENT
          ? new SparsitySchedule(10, 0, 0, totalSteps, 0.0, 0.1)
          : new SparsitySchedule(10, 0, 0, totalSteps, 1.0, 0.03);
      DriverUpdate update = new DriverUpdate(
          PruningConfig.of(criterion, schedule, criterion == PruningCriterion.SOFT_MOVEMENT ? 550 : 0),
          OptimizerConfig.unstructuredDefaults(10, totalSteps));
      TrainingState state = update.initialState(weights);
      int warmup = 3;
      double sum = 0;
      double min = Double.MAX_VALUE;
      double cpu = 0;
      double masks = 0;
      UpdateSummary last = null;
      for (int i = 0; i < warmup + runs; i++) {
        long c0 = processCpuNanos();
        long t0 = System.nanoTime();
        last = update.apply(state, gradSets.get(i % gradSets.size()));
        double ms = (System.nanoTime() - t0) / 1e6;
        double cpuMs = (processCpuNanos() - c0) / 1e6;
        // The mask selection alone, same threshold as the step just done (idempotent).
        long t1 = processCpuNanos();
        update.recomputeMasks(state, last.nextThreshold());
        double maskMs = (processCpuNanos() - t1) / 1e6;
        if (i >= warmup) {
          sum += ms;
          cpu += cpuMs;
          masks += maskMs;
          min = Math.min(min, ms);
        }
      }
      long t0 = System.nanoTime();
      state.effectiveWeights();
      double publishMs = (System.nanoTime() - t0) / 1e6;
      System.out.printf("%s: %d parameters (%d prunable in %d matrices): DriverUpdate.apply mean %.1f ms "
              + "(min %.1f, process CPU %.1f ms per step) over %d runs after %d warm-up; of which mask "
              + "selection ~%.1f ms CPU; effectiveWeights %.1f ms; step %d sparsity %.4f; load average %.1f%n",
          criterion, total, last.sparsity().totalNumel(), last.sparsity().matrices().size(),
          sum / runs, min, cpu / runs, runs, warmup, masks / runs, publishMs, last.step(),
          last.sparsity().sparsity(), java.lang.management.ManagementFactory.getOperatingSystemMXBean()
              .getSystemLoadAverage());
    }
  }
}
