package io.capprune.spark.pipeline.evaluate;

import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.pipeline.DevSet;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.worker.EncodeTask;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * Dev metrics of a model: one Spark job per dev split, in which every partition predicts its
 * examples and hands back only its {@link DevPredictions}. Every stage that scores a model (the
 * teacher after finetune, snapshots during pruning, the evaluate stage) goes through here.
 */
public final class DevScorer {
  private final RunContext run;

  public DevScorer(RunContext run) {
    this.run = run;
  }

  /**
   * The metrics of the model given by its (effective) weights, keys prefixed by the split's name
   * when the task has several dev splits (MNLI).
   */
  public Map<String, Double> score(LinkedHashMap<String, HostTensor> weights) {
    JavaSparkContext sc = run.sc();
    Broadcast<LinkedHashMap<String, HostTensor>> w = sc.broadcast(weights);
    EncodeTask predict =
        new EncodeTask(
            run.core().worker(), w, false, Representation.Mode.POOLER, run.config().seed());
    int classes = run.core().student().numLabels();
    boolean regression = run.task().isRegression();
    Map<String, Double> all = new LinkedHashMap<>();
    List<DevSet.Split> splits = run.data().dev().splits();
    for (DevSet.Split split : splits) {
      sc.setJobDescription("evaluate " + split.name());
      List<DevPredictions> parts =
          split
              .partitions()
              .map(
                  part ->
                      DevPredictions.of(part, predict.run(part, 0).logits(), classes, regression))
              .collect();
      Map<String, Double> m = DevPredictions.metrics(run.task(), parts, split.size());
      String prefix = splits.size() > 1 ? split.name() + "/" : "";
      m.forEach((k, v) -> all.put(prefix + k, v));
    }
    w.destroy(true); // blocking: see GradientExchange (a racing removal logs WARNs)
    return all;
  }
}
