package io.capprune.spark.pipeline;

import io.capprune.core.glue.GlueData;
import io.capprune.core.text.BertTokenizer;
import io.capprune.core.train.EncodedExample;
import io.capprune.spark.data.GlueFiles;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.storage.StorageLevel;

/**
 * The dev splits (one for most tasks, matched and mismatched for MNLI), tokenised and cached in
 * partitions for scoring.
 */
public record DevSet(List<Split> splits) {

  /**
   * One dev split.
   *
   * @param partitions the tokenised examples, one array per partition; each example's global index
   *     is its position in the split
   * @param size the number of examples
   */
  public record Split(String name, JavaRDD<EncodedExample[]> partitions, int size) {}

  public DevSet {
    splits = List.copyOf(splits);
  }

  /**
   * Tokenises on the driver, which has read and checked the files already; dev splits are small and
   * scored several times, so their partitions stay cached.
   */
  static DevSet tokenize(
      JavaSparkContext sc,
      List<GlueData> data,
      BertTokenizer tokenizer,
      int maxSeqLength,
      int partitions) {
    List<Split> splits = new ArrayList<>();
    for (GlueData split : data) {
      List<EncodedExample> enc = GlueFiles.encode(split.examples(), tokenizer, maxSeqLength);
      int parts = Math.max(1, Math.min(partitions, enc.size()));
      JavaRDD<EncodedExample[]> rdd =
          sc.parallelize(enc, parts)
              .glom()
              .map(l -> l.toArray(EncodedExample[]::new))
              .persist(StorageLevel.MEMORY_ONLY());
      splits.add(new Split(split.split(), rdd, split.size()));
    }
    return new DevSet(splits);
  }
}
