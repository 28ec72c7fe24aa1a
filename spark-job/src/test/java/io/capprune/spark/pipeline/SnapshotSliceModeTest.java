package io.capprune.spark.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.tensor.HalfPrecision;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.data.Shard;
import io.capprune.spark.pipeline.prune.RepresentationBanks;
import io.capprune.spark.pipeline.prune.StructuredPruneStage;
import io.capprune.spark.worker.EncodeTask;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 20 item 2: structured CAP's SnC slices are encoded in eval mode (no dropout), as the
 * reference's structured runs; the unstructured ones stay in train mode (dropout on). The slice
 * StructuredPruneStage adds must equal an eval-mode encoding of the same weights exactly, and
 * differ from a train-mode one (the demo model has dropout 0.1, so the two modes give different
 * vectors).
 */
class SnapshotSliceModeTest {
  @TempDir Path tmp;

  @Test
  void structuredSlicesAreEvalModeAndUnstructuredOnesTrainMode() {
    List<String> settings = new ArrayList<>(PipelineFixture.settings(tmp.resolve("inputs"), 1));
    settings.add("prune.method=cap-structured");
    settings.add("output=\"" + tmp.resolve("out") + "\"");
    JobConfig config = JobConfig.load(null, settings);
    CapPipeline.Validated v = CapPipeline.validate(config, new Configuration());
    try (JavaSparkContext sc = SparkContexts.create(config, "snapshot-slice-mode")) {
      RunContext run = new CapPipeline(v, sc).context();
      LinkedHashMap<String, HostTensor> weights = run.studentInit();
      CapLossConfig loss = run.core().loss();
      HfCheckpoint teacher =
          new HfCheckpoint(
              "teacher", run.core().student(), run.studentInit(), run.pretrained().vocab());
      JavaRDD<Shard> banked =
          RepresentationBanks.build(run, run.data().train(), teacher, run.studentInit(), loss);

      List<Shard> structured = StructuredPruneStage.snapshotSlice(run, banked, weights).collect();
      List<Shard> unstructured =
          RepresentationBanks.withSnapshotSlice(run, banked, weights, true).collect();

      Broadcast<LinkedHashMap<String, HostTensor>> w = sc.broadcast(weights);
      int compared = 0;
      boolean trainModeDiffers = false;
      for (int i = 0; i < structured.size(); i++) {
        Shard s = structured.get(i);
        assertEquals(1, s.bank().slices(Kind.SNAP));
        int[] rows = new int[s.size()];
        for (int r = 0; r < rows.length; r++) {
          rows[r] = r;
        }
        // eval mode has no randomness: any seed gives the same vectors
        float[] eval =
            new EncodeTask(run.core().worker(), w, false, loss.representation(), 12345)
                .run(s.examples(), s.partition())
                .vectors();
        float[] slice = s.bank().gather(Kind.SNAP, rows);
        // the bank keeps fp16 vectors
        float[] evalHalf = new float[eval.length];
        for (int k = 0; k < eval.length; k++) {
          evalHalf[k] = HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(eval[k]));
        }
        assertArrayEquals(evalHalf, slice, 0f, "partition " + s.partition());
        float[] train = unstructured.get(i).bank().gather(Kind.SNAP, rows);
        for (int k = 0; k < train.length && !trainModeDiffers; k++) {
          trainModeDiffers = Math.abs(train[k] - slice[k]) > 1e-3;
        }
        compared += s.size();
      }
      assertEquals(PipelineFixture.TRAIN_EXAMPLES, compared);
      assertTrue(
          trainModeDiffers,
          "the unstructured (train-mode) slice should differ from the eval-mode one");
    }
  }
}
