package io.capprune.spark.worker;

import io.capprune.core.checkpoint.BertConfig;
import java.io.Serializable;

/**
 * What every task on an executor (encoding, training step, importance) needs to know besides its
 * data and weights: the model, how to cut and pad micro-batches, and where and how to compute.
 * Built by the driver from the job's configuration, whose {@code cap.worker} section is {@link
 * io.capprune.spark.config.JobConfig.WorkerSettings}.
 *
 * @param padTo 0 = pad each micro-batch to its longest example (dynamic padding), else
 *     max-seq-length
 * @param threads PyTorch intra-op threads; 0 = the executor's cores
 */
public record TaskSettings(
    BertConfig model,
    int microBatchSize,
    int padTo,
    int padId,
    boolean useGpu,
    int threads,
    boolean regression)
    implements Serializable {

  /**
   * Intra-op threads for PyTorch. Tasks of one executor JVM run one at a time (see {@link
   * WorkerRuntime}), so the running task may use all the executor's cores: in local mode with
   * several task slots, threads per task (spark.task.cpus) would leave cores idle.
   */
  int threadsForTask() {
    if (threads > 0) {
      return threads;
    }
    org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
    if (env != null
        && env.conf().contains("spark.executor.cores")
        && !env.conf().get("spark.master", "").startsWith("local")) {
      return Math.max(1, env.conf().getInt("spark.executor.cores", 1));
    }
    return Math.max(1, Runtime.getRuntime().availableProcessors());
  }
}
