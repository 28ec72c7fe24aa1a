package io.capprune.spark.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.capprune.core.glue.GlueMetrics;
import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.train.EncodedExample;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.pipeline.evaluate.DevScorer;
import io.capprune.spark.worker.EncodeTask;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 22 item 2: scoring a model on a dev split is one Spark job (not one for the predictions and
 * another that collects every example for its index), and gives the metric of the split's
 * predictions in order.
 */
class DevScorerTest {
  @TempDir Path tmp;

  @Test
  void oneSparkJobPerDevSplitAndTheMetricOfTheWholeSplit() throws Exception {
    List<String> settings = new ArrayList<>(PipelineFixture.settings(tmp.resolve("inputs"), 1));
    settings.add("output=\"" + tmp.resolve("out") + "\"");
    JobConfig config = JobConfig.load(null, settings);
    CapPipeline.Validated v = CapPipeline.validate(config, new Configuration());
    try (JavaSparkContext sc = SparkContexts.create(config, "dev-scorer")) {
      RunContext run = new CapPipeline(v, sc).context();
      LinkedHashMap<String, HostTensor> weights = run.studentInit();
      List<String> jobs = new CopyOnWriteArrayList<>();
      SparkListener listener =
          new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart start) {
              jobs.add(start.properties().getProperty("spark.job.description", "?"));
            }
          };
      sc.sc().addSparkListener(listener);
      Map<String, Double> first = new DevScorer(run).score(weights);
      Map<String, Double> second = new DevScorer(run).score(weights);
      sc.sc().listenerBus().waitUntilEmpty();
      sc.sc().removeSparkListener(listener);
      assertEquals(List.of("evaluate dev", "evaluate dev"), jobs);
      assertEquals(first, second);

      // The reference: every example's prediction, in split order, on the driver.
      DevSet.Split split = run.data().dev().splits().get(0);
      List<EncodedExample[]> parts = split.partitions().collect();
      Broadcast<LinkedHashMap<String, HostTensor>> w = sc.broadcast(weights);
      EncodeTask predict =
          new EncodeTask(run.core().worker(), w, false, Representation.Mode.POOLER, config.seed());
      int classes = run.core().student().numLabels();
      int[] predicted = new int[split.size()];
      int[] gold = new int[split.size()];
      for (EncodedExample[] part : parts) {
        float[] logits = predict.run(part, 0).logits();
        for (int i = 0; i < part.length; i++) {
          int row = (int) part[i].globalIndex();
          gold[row] = part[i].label();
          predicted[row] = logits[i * classes + 1] > logits[i * classes] ? 1 : 0;
        }
      }
      assertEquals(200, split.size());
      assertEquals(GlueMetrics.compute(run.task(), predicted, gold), first);
    }
  }
}
