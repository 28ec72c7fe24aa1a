package io.capprune.spark.pipeline;

import io.capprune.core.glue.GlueData;
import io.capprune.core.text.BertTokenizer;
import io.capprune.spark.config.JobConfig;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;

/**
 * The run's examples as the stages use them: the training set and the dev splits, each tokenised
 * once, when a stage first asks for it, and cached for the stages after it. A run that only
 * evaluates or exports never tokenises the training set.
 */
public final class TokenizedData {
  private final JavaSparkContext sc;
  private final JobConfig config;
  private final BertTokenizer tokenizer;
  private final Logger log;
  private final List<GlueData> devText;
  private GlueData trainText;
  private TrainingSet train;
  private DevSet dev;

  /**
   * @param train the training split as validation read it
   * @param dev the dev splits as validation read them
   */
  TokenizedData(
      JavaSparkContext sc,
      JobConfig config,
      BertTokenizer tokenizer,
      GlueData train,
      List<GlueData> dev,
      Logger log) {
    this.sc = sc;
    this.config = config;
    this.tokenizer = tokenizer;
    this.trainText = train;
    this.devText = List.copyOf(dev);
    this.log = log;
  }

  /**
   * The tokenised training set. The first call runs the tokenising Spark job and logs the "training
   * set: ..." line; later calls return the same cached shards.
   */
  public TrainingSet train() {
    if (train == null) {
      train = TrainingSet.tokenize(sc, config, trainText, tokenizer, partitions(), log);
      // the cached shards hold the examples now
      trainText = null;
    }
    return train;
  }

  /** The tokenised dev splits: tokenised on the first call, the same cached partitions after. */
  public DevSet dev() {
    if (dev == null) {
      dev = DevSet.tokenize(sc, devText, tokenizer, config.maxSeqLength(), partitions());
    }
    return dev;
  }

  /** cap.spark.partitions, or Spark's default parallelism when that is 0. */
  public int partitions() {
    return config.spark().partitions() > 0 ? config.spark().partitions() : sc.defaultParallelism();
  }
}
