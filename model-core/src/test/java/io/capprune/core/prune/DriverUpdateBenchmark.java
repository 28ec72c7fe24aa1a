package io.capprune.core.prune;

import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.HostTensor;
import java.util.LinkedHashMap;
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
      LinkedHashMap<String, HostTensor> grads = ToyBert.random(shapes, 1e-4, 2);
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
      UpdateSummary last = null;
      for (int i = 0; i < warmup + runs; i++) {
        long t0 = System.nanoTime();
        last = update.apply(state, grads);
        double ms = (System.nanoTime() - t0) / 1e6;
        if (i >= warmup) {
          sum += ms;
          min = Math.min(min, ms);
        }
      }
      long t0 = System.nanoTime();
      state.effectiveWeights();
      double publishMs = (System.nanoTime() - t0) / 1e6;
      System.out.printf("%s: %d parameters (%d prunable in %d matrices), DriverUpdate.apply mean %.1f ms, "
              + "min %.1f ms over %d runs after %d warm-up; effectiveWeights %.1f ms; last step %d sparsity %.4f%n",
          criterion, total, last.sparsity().totalNumel(), last.sparsity().matrices().size(),
          sum / runs, min, runs, warmup, publishMs, last.step(), last.sparsity().sparsity());
    }
  }
}
