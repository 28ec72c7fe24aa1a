package io.capprune.spark.pipeline.finetune;

import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.pipeline.OutputLayout;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.pipeline.Stage;
import io.capprune.spark.pipeline.TrainingSet;
import io.capprune.spark.pipeline.evaluate.DevScorer;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.RunSummary;
import io.capprune.spark.report.StepRecord;
import io.capprune.spark.train.DistributedTrainer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.hadoop.fs.Path;

/**
 * Trains the teacher from the pre-trained checkpoint with the task loss (dense, nothing pruned) and
 * writes it to {@code teacher/}; then scores it on the dev set: the metrics go to the log, {@code
 * metrics.json} and {@code summary.txt} (a teacher is a result in its own right; later stages
 * overwrite both). Nothing to do when cap.teacher names a teacher.
 */
public final class FinetuneStage implements Stage<Map<String, Double>> {

  @Override
  public String name() {
    return "finetune";
  }

  @Override
  public Optional<String> completeOutput(RunContext run) {
    if (run.teacher().given()) {
      // A given teacher is this stage's output already; run() refuses to replace it.
      return Optional.of("cap.teacher = " + run.config().teacher());
    }
    if (run.teacher().finetuned()) {
      return Optional.of(run.teacher().location() + " holds a teacher");
    }
    return Optional.empty();
  }

  /**
   * @return the teacher's dev metrics
   */
  @Override
  public Map<String, Double> run(RunContext run) {
    JobConfig config = run.config();
    if (run.teacher().given()) {
      throw new IllegalArgumentException(
          "cap.teacher is set ("
              + config.teacher()
              + "): the teacher exists; nothing to fine-tune");
    }
    if (run.teacher().finetuned()) {
      throw new IllegalStateException(
          run.teacher().location()
              + " already holds a teacher; pass --overwrite to train it again");
    }
    JobConfig.FinetuneSettings ft = config.finetune();
    LinkedHashMap<String, HostTensor> init = run.studentInit();
    TrainingSet train = run.data().train();
    DistributedTrainer.Plan plan =
        new DistributedTrainer.Plan(
            "finetune",
            ft.epochs(),
            ft.batchSize(),
            train.size(),
            config.seed(),
            config.logEverySteps(),
            config.spark().aggregateDepth());
    DriverUpdate update = run.core().finetuneUpdate(plan.totalSteps());
    TrainingState state = update.initialState(init);
    run.log()
        .info(
            "finetune: {} examples, {} epochs x {} steps, batch {}",
            train.size(),
            ft.epochs(),
            plan.stepsPerEpoch(),
            ft.batchSize());
    DistributedTrainer trainer = run.trainer(null, update);
    try (MetricsLog log =
        MetricsLog.create(
            run.storage().fs(run.out().root()), run.resolve(OutputLayout.FINETUNE_DIR), 50)) {
      trainer.train(train.shards(), state, plan, null, log);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    HfCheckpoint teacher =
        new HfCheckpoint(
            "teacher", run.core().student(), state.weights(), run.pretrained().vocab());
    String location = run.teacher().location();
    try {
      CheckpointStore.write(
          teacher, run.resolve(OutputLayout.TEACHER_DIR).toString(), run.storage().conf(), false);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot write the teacher to " + location + ": " + e.getMessage(), e);
    }
    run.log().info("finetune: teacher written to {}", location);
    Map<String, Double> dev = new DevScorer(run).score(new LinkedHashMap<>(teacher.tensors()));
    writeResults(run, dev);
    return dev;
  }

  /** metrics.json and summary.txt of a run that has only its teacher so far. */
  private static void writeResults(RunContext run, Map<String, Double> dev) {
    Map<String, Object> metrics = new LinkedHashMap<>();
    metrics.put("task", run.task().name());
    metrics.put("teacher", dev);
    Map<String, String> scored = new LinkedHashMap<>();
    scored.put("teacher", OutputLayout.TEACHER_DIR + "/");
    metrics.put("scored", scored);
    run.writeJson(run.resolve(OutputLayout.METRICS_JSON), metrics);
    List<StepRecord> records =
        run.readRecords(new Path(run.resolve(OutputLayout.FINETUNE_DIR), MetricsLog.FILE_NAME));
    Map<String, String> locations = new LinkedHashMap<>();
    locations.put("teacher", run.teacher().location());
    locations.put("metrics", run.resolve(OutputLayout.METRICS_JSON).toString());
    RunSummary summary =
        RunSummary.of(
            run.task().name(),
            run.config().prune().method().configName()
                + " (not pruned yet: finetune only, the teacher)",
            records,
            dev,
            Map.of(),
            locations);
    try {
      String text = summary.write(run.storage().fs(run.out().root()), run.out().root());
      run.log().info("finetune: teacher dev metrics {}\n{}", dev, text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
