package io.capprune.spark.pipeline;

import io.capprune.core.glue.GlueData;
import io.capprune.core.glue.GlueExample;
import io.capprune.core.text.BertTokenizer;
import io.capprune.core.train.EncodedExample;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.config.Preflight;
import io.capprune.spark.data.GlueFiles;
import io.capprune.spark.data.Shard;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;

/**
 * The training set, tokenised on the executors into cached shards (one {@link Shard} per
 * partition); the training stages all train on these shards.
 *
 * @param shards the cached shards, without banks
 * @param size N, the number of examples: global indices run over [0, N)
 */
public record TrainingSet(JavaRDD<Shard> shards, long size) {

  /**
   * Shuffles the examples read on the driver into {@code partitions} contiguous slices and
   * tokenises each on an executor (one Spark job); the shards stay cached.
   */
  static TrainingSet tokenize(
      JavaSparkContext sc,
      JobConfig config,
      GlueData data,
      BertTokenizer tokenizer,
      int partitions,
      Logger log) {
    if (data.skipped() > 0) {
      log.warn(
          "{}: skipped {} malformed rows, e.g. {}",
          data.source(),
          data.skipped(),
          data.skippedSamples());
    }
    List<GlueExample> examples = new ArrayList<>(data.examples());
    // A uniform random partition: shard-local negatives are then a uniform sample
    // (docs/decisions.md decision 6).
    Collections.shuffle(examples, new Random(config.seed()));
    if (config.spark().partitions() == 0) {
      // With cap.spark.partitions set, validation has warned already.
      Preflight.negativesWarning(config, data.size(), partitions).ifPresent(log::warn);
    }
    Broadcast<BertTokenizer> tok = sc.broadcast(tokenizer);
    // The examples travel as a broadcast, not as parallelize's data: a parallelized collection's
    // partitions carry their rows, so every later task (one per partition per training step)
    // would ship its shard's text again. Unpersisted below; Spark re-sends it if a lost shard is
    // recomputed.
    Broadcast<List<GlueExample>> rows = sc.broadcast(examples);
    int maxLen = config.maxSeqLength();
    sc.setJobDescription("read and tokenize " + data.source());
    List<Integer> indices = new ArrayList<>();
    for (int i = 0; i < partitions; i++) {
      indices.add(i);
    }
    JavaRDD<Shard> shards =
        sc.parallelize(indices, partitions)
            .map(
                index -> {
                  List<GlueExample> all = rows.value();
                  // The same slices parallelize would cut: contiguous, sizes differing by at most
                  // one.
                  int from = (int) ((long) index * all.size() / partitions);
                  int to = (int) ((long) (index + 1) * all.size() / partitions);
                  List<EncodedExample> enc =
                      GlueFiles.encode(all.subList(from, to), tok.value(), maxLen);
                  return new Shard(index, enc.toArray(EncodedExample[]::new), null);
                })
            .persist(StorageLevel.MEMORY_ONLY());
    shards.count();
    rows.unpersist(false);
    log.info(
        "training set: {} examples from {} in {} partitions",
        data.size(),
        data.source(),
        partitions);
    return new TrainingSet(shards, data.size());
  }
}
