package io.capprune.spark.data;

import io.capprune.core.glue.GlueData;
import io.capprune.core.glue.GlueExample;
import io.capprune.core.glue.GlueReader;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.text.BertTokenizer;
import io.capprune.core.text.Encoding;
import io.capprune.core.train.EncodedExample;
import io.capprune.spark.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.fs.Path;

/** Reads a GLUE split through the Hadoop FileSystem, and turns examples into token ids. */
public final class GlueFiles {
  private GlueFiles() {}

  /**
   * Reads {@code <dataDir>/<file of split>}; a missing file or a malformed row stops here with the
   * file (and line) named.
   */
  public static GlueData read(
      Storage storage,
      String dataDir,
      GlueTask task,
      String split,
      List<String> labels,
      boolean skipBadRows,
      int limit) {
    if (dataDir == null || dataDir.isBlank()) {
      throw new IllegalArgumentException("cap.data-dir: no GLUE data directory given");
    }
    Path file = new Path(Storage.path(dataDir), task.fileName(split));
    if (!storage.exists(file)) {
      throw new IllegalArgumentException(
          "cap.data-dir: "
              + file
              + " does not exist (the "
              + task.dirName()
              + " "
              + split
              + " split is expected there, in GLUE's TSV format)");
    }
    GlueReader reader = GlueReader.of(task).withSkipBadRows(skipBadRows);
    if (!labels.isEmpty()) {
      reader = reader.withLabels(labels);
    }
    GlueData data;
    try (InputStream in = storage.open(file)) {
      data = reader.read(split, in, file.toString());
    } catch (IOException e) {
      throw new Storage.StorageException("cannot read " + file + ": " + e.getMessage(), e);
    }
    if (limit > 0 && data.size() > limit) {
      data =
          new GlueData(
              data.task(),
              data.split(),
              data.source(),
              data.labels(),
              List.copyOf(data.examples().subList(0, limit)),
              data.skipped(),
              data.skippedSamples());
    }
    return data;
  }

  /** Tokenizes examples: [CLS] a [SEP] (b [SEP]), longest-first truncation, no padding. */
  public static List<EncodedExample> encode(
      List<GlueExample> examples, BertTokenizer tokenizer, int maxSeqLength) {
    List<EncodedExample> out = new ArrayList<>(examples.size());
    for (GlueExample e : examples) {
      Encoding enc =
          e.textB() == null
              ? tokenizer.encode(e.textA(), maxSeqLength)
              : tokenizer.encode(e.textA(), e.textB(), maxSeqLength);
      int[] types = enc.tokenTypeIds();
      byte[] t = new byte[types.length];
      for (int i = 0; i < t.length; i++) {
        t[i] = (byte) types[i];
      }
      out.add(new EncodedExample(e.index(), enc.inputIds(), t, e.label(), e.score()));
    }
    return out;
  }
}
