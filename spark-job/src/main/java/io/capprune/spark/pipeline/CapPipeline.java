package io.capprune.spark.pipeline;

import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.glue.GlueData;
import io.capprune.core.glue.GlueTask;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.config.Preflight;
import io.capprune.spark.data.GlueFiles;
import io.capprune.spark.io.RunDirectory;
import io.capprune.spark.io.Storage;
import io.capprune.spark.pipeline.evaluate.EvaluateStage;
import io.capprune.spark.pipeline.export.ExportStage;
import io.capprune.spark.pipeline.finetune.FinetuneStage;
import io.capprune.spark.pipeline.prune.PruneStage;
import io.capprune.spark.pipeline.prune.StructuredPruneStage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A CAP run over one output directory: its inputs checked before Spark starts ({@link #validate}),
 * then the stages in order, {@code finetune} (the teacher), {@code prune} (CAP or a baseline,
 * structured or not, with snapshots), {@code evaluate} (dev metrics), {@code export} (the Hugging
 * Face model users pull). Each stage reads what the previous one wrote, so any of them can run
 * alone, and {@link #run} skips a stage whose output is complete. The stages live in the
 * sub-packages named after them; what they share is the {@link RunContext}.
 */
public final class CapPipeline {
  private static final Logger LOG = LoggerFactory.getLogger(CapPipeline.class);

  /** {@link OutputLayout#TEACHER_DIR}, for the CLI's report of a finetune run. */
  public static final String TEACHER_DIR = OutputLayout.TEACHER_DIR;

  private final RunContext run;

  /**
   * Everything that can be checked without Spark: configuration, checkpoints, data files, output.
   *
   * @param train the training split, read and parsed (every row checked)
   * @param dev the dev splits, read and parsed
   * @param teacher the checkpoint cap.teacher names, checked against the task; null when the
   *     finetune stage trains the teacher
   */
  public record Validated(
      JobConfig config,
      Storage storage,
      RunDirectory out,
      GlueTask task,
      HfCheckpoint pretrained,
      GlueData train,
      List<GlueData> dev,
      HfCheckpoint teacher) {}

  /**
   * Checks the inputs before any Spark work and opens the output directory. Nothing in the output
   * directory changes when this fails: every input is read and checked before the output directory
   * is opened (opening it writes run.json).
   */
  public static Validated validate(JobConfig config, org.apache.hadoop.conf.Configuration hadoop) {
    Storage storage = new Storage(Storage.hadoopConfiguration(hadoop, config.s3()));
    GlueTask task = GlueTask.of(config.task());
    if (config.model().isBlank()) {
      throw new IllegalArgumentException("cap.model: no pre-trained checkpoint given");
    }
    HfCheckpoint pretrained;
    try {
      pretrained = CheckpointStore.read(config.model(), storage.conf());
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cap.model: cannot read " + config.model() + ": " + e.getMessage(), e);
    }
    // The files are parsed here, on the driver, where the training stage reads them anyway: a
    // malformed row then stops the job before Spark starts and before run.json is written.
    GlueData train =
        GlueFiles.read(
            storage,
            config.dataDir(),
            task,
            task.trainSplit(),
            config.labels(),
            config.skipBadRows(),
            config.maxTrainExamples());
    if (train.size() == 0) {
      throw new IllegalArgumentException(train.source() + ": no training examples");
    }
    List<GlueData> dev = new ArrayList<>();
    for (String split : task.devSplits()) {
      dev.add(
          GlueFiles.read(
              storage,
              config.dataDir(),
              task,
              split,
              config.labels(),
              config.skipBadRows(),
              config.maxDevExamples()));
    }
    HfCheckpoint teacher = null;
    if (!config.teacher().isBlank()) {
      try {
        teacher = CheckpointStore.read(config.teacher(), storage.conf());
      } catch (IOException e) {
        throw new UncheckedIOException(
            "cap.teacher: cannot read " + config.teacher() + ": " + e.getMessage(), e);
      }
      TeacherSource.check(
          teacher, config.teacher(), CoreSettings.student(config, task, pretrained), task);
    }
    // Every check that needs the data's size or the model's shape, before Spark and training.
    boolean trainsTeacher =
        config.teacher().isBlank()
            && (config.overwrite()
                || config.output().isBlank()
                || !storage.exists(
                    new Path(
                        new Path(config.output(), OutputLayout.TEACHER_DIR),
                        CheckpointStore.CONFIG)));
    Preflight.check(
        config, train.size(), CoreSettings.student(config, task, pretrained), trainsTeacher);
    if (config.spark().partitions() > 0) {
      Preflight.negativesWarning(config, train.size(), config.spark().partitions())
          .ifPresent(LOG::warn);
    }
    Map<String, String> identity = new LinkedHashMap<>();
    identity.put("task", task.name());
    identity.put("model", config.model());
    identity.put("data-dir", config.dataDir());
    identity.put("method", config.prune().method().configName());
    identity.put("final-threshold", Double.toString(config.prune().finalThreshold()));
    RunDirectory out = RunDirectory.open(storage, config.output(), identity, config.overwrite());
    return new Validated(config, storage, out, task, pretrained, train, List.copyOf(dev), teacher);
  }

  public CapPipeline(Validated v, JavaSparkContext sc) {
    this.run = RunContext.of(v, sc, LOG);
  }

  /** What the stages of this run share. */
  public RunContext context() {
    return run;
  }

  /** The stages of a run, in order; the prune stage is the one cap.prune.method names. */
  public List<Stage<?>> stages() {
    return List.of(new FinetuneStage(), pruneStage(), new EvaluateStage(), new ExportStage());
  }

  /** finetune, prune, evaluate, export; a stage whose output is complete is skipped. */
  public void run() {
    for (Stage<?> stage : stages()) {
      Optional<String> complete = stage.completeOutput(run);
      if (complete.isPresent()) {
        LOG.info("{}: skipped, {}", stage.name(), complete.get());
      } else {
        stage.run(run);
      }
    }
  }

  /**
   * The finetune stage alone ({@link FinetuneStage}).
   *
   * @return the teacher's dev metrics
   */
  public Map<String, Double> finetune() {
    return new FinetuneStage().run(run);
  }

  /** The prune stage alone ({@link PruneStage}, or {@link StructuredPruneStage}). */
  public void prune() {
    pruneStage().run(run);
  }

  /**
   * The evaluate stage alone ({@link EvaluateStage}).
   *
   * @return what it wrote to metrics.json
   */
  public Map<String, Object> evaluate() {
    return new EvaluateStage().run(run);
  }

  /** The export stage alone ({@link ExportStage}). */
  public void export() {
    new ExportStage().run(run);
  }

  /** {@link EvaluateStage#describeScores}: one line per model scored, with its dev metrics. */
  public static String describeScores(Map<String, Object> metrics) {
    return EvaluateStage.describeScores(metrics);
  }

  private Stage<Void> pruneStage() {
    return run.config().prune().method().structured()
        ? new StructuredPruneStage()
        : new PruneStage();
  }
}
