package io.capprune.spark.worker;

import io.capprune.core.checkpoint.BertConfig;
import java.io.Serializable;
import org.apache.spark.TaskContext;

/**
 * What every worker task needs to know besides its data and weights.
 *
 * @param padTo 0 = pad each micro-batch to its longest example (dynamic padding), else max-seq-length
 * @param threads PyTorch intra-op threads; 0 = the task's cores (spark.task.cpus)
 */
public record WorkerSettings(BertConfig model, int microBatchSize, int padTo, int padId, boolean useGpu,
    int threads, boolean regression) implements Serializable {

  int threadsForTask() {
    if (threads > 0) {
      return threads;
    }
    TaskContext tc = TaskContext.get();
    return tc == null ? Runtime.getRuntime().availableProcessors() : Math.max(1, tc.cpus());
  }
}
