package io.capprune.spark.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.text.BertTokenizer;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.io.JsonFiles;
import io.capprune.spark.io.RunDirectory;
import io.capprune.spark.io.SnapshotStore;
import io.capprune.spark.io.Storage;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.StepRecord;
import io.capprune.spark.train.DistributedTrainer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;

/**
 * What the stages of one run share: the configuration and its model-core settings, Spark, the
 * storage and output directory, the checkpoints, the tokenised data and the log.
 *
 * @param core the configuration as model-core settings (loss, driver updates, worker settings)
 * @param teacher where the teacher comes from
 * @param data the training set and dev splits, tokenised when a stage first asks
 * @param log the logger of the stages' progress lines. One logger, named after {@link CapPipeline}
 *     as before the stages were classes of their own: the console pattern prints its name, and log
 *     configurations may set its level
 */
public record RunContext(
    JobConfig config,
    JavaSparkContext sc,
    Storage storage,
    RunDirectory out,
    GlueTask task,
    HfCheckpoint pretrained,
    CoreSettings core,
    TeacherSource teacher,
    TokenizedData data,
    Logger log) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The context of a run whose inputs {@link CapPipeline#validate} has checked. */
  static RunContext of(CapPipeline.Validated v, JavaSparkContext sc, Logger log) {
    JobConfig config = v.config();
    BertTokenizer tokenizer = new BertTokenizer(v.pretrained().vocab(), true);
    CoreSettings core =
        new CoreSettings(
            config,
            v.task(),
            CoreSettings.student(config, v.task(), v.pretrained()),
            tokenizer.padId());
    TeacherSource teacher =
        new TeacherSource(config, v.storage(), v.out(), v.teacher(), core.student(), v.task());
    TokenizedData data = new TokenizedData(sc, config, tokenizer, v.train(), v.dev(), log);
    return new RunContext(
        config, sc, v.storage(), v.out(), v.task(), v.pretrained(), core, teacher, data, log);
  }

  /**
   * The trainer of a stage: this run's Spark, worker settings, wire precision and where the update
   * runs ({@code cap.spark.update-on}), with the stage's objective and update.
   *
   * @param loss the CAP objective for the workers; null = task loss only (teacher fine-tuning)
   */
  public DistributedTrainer trainer(CapLossConfig loss, DriverUpdate update) {
    return new DistributedTrainer(
        sc,
        core.worker(),
        loss,
        update,
        core.exchangePrecision(),
        config.spark().updateOnExecutor());
  }

  /** A path inside the output directory ({@link OutputLayout} names them). */
  public Path resolve(String relative) {
    return out.resolve(relative);
  }

  /** The committed snapshots of the prune stage. */
  public SnapshotStore snapshots() {
    return new SnapshotStore(storage, out.resolve(OutputLayout.SNAPSHOTS_DIR));
  }

  /**
   * Pre-trained weights plus a pooler (if missing) and a new classifier, seeded. A fresh copy on
   * every call: training updates its arrays in place, and the pre-trained checkpoint must stay
   * pre-trained for the next stage of the same run (the student's start and the PrC bank).
   */
  public LinkedHashMap<String, HostTensor> studentInit() {
    Map<String, HostTensor> base = new LinkedHashMap<>();
    pretrained.tensors().forEach((name, t) -> base.put(name, t.copy()));
    HostTensor cw = base.get("classifier.weight");
    int labels = core.student().numLabels();
    if (cw != null && cw.shape()[0] != labels) {
      log.warn(
          "cap.model: its classifier has {} outputs, the task {}; starting a new classifier",
          cw.shape()[0],
          labels);
      base.remove("classifier.weight");
      base.remove("classifier.bias");
    }
    return new LinkedHashMap<>(BertInit.fillMissing(core.student(), base, config.seed()));
  }

  public void writeJson(Path path, Object value) {
    storage.writeString(path, JsonFiles.pretty(value), true);
  }

  /** A JSON object file; empty when the file does not exist. */
  @SuppressWarnings("unchecked")
  public Map<String, Object> readJson(Path path) {
    if (!storage.exists(path)) {
      return Map.of();
    }
    try {
      return JSON.readValue(storage.readString(path), Map.class);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The records of a metrics.jsonl; none when the file does not exist. */
  public List<StepRecord> readRecords(Path jsonl) {
    try {
      return storage.exists(jsonl) ? MetricsLog.read(storage.fs(jsonl), jsonl) : List.of();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The numeric entries of a metric map read from JSON (e.g. {@code {"acc": 0.88}}). */
  public static Map<String, Double> doubles(Object o) {
    Map<String, Double> m = new LinkedHashMap<>();
    if (o instanceof Map<?, ?> map) {
      map.forEach(
          (k, v) -> {
            if (v instanceof Number num) {
              m.put(String.valueOf(k), num.doubleValue());
            }
          });
    }
    return m;
  }
}
