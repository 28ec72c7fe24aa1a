package io.capprune.spark.pipeline;

import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Representation;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.structured.PruneSequence;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.config.PruneMethod;
import io.capprune.spark.worker.TaskSettings;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The one place where the job's configuration becomes model-core's settings: the student's {@link
 * BertConfig}, the CAP loss, the executors' {@link TaskSettings}, and the driver update (pruning
 * criterion and schedule, AdamW) of each training stage. The stages take these objects and never
 * read the loss, optimizer or pruning keys of {@link JobConfig} themselves.
 */
public final class CoreSettings {
  private final JobConfig config;
  private final GlueTask task;
  private final BertConfig student;
  private final int padId;

  /**
   * @param student the student's configuration ({@link #student(JobConfig, GlueTask,
   *     HfCheckpoint)})
   * @param padId the tokenizer's [PAD] id
   */
  public CoreSettings(JobConfig config, GlueTask task, BertConfig student, int padId) {
    this.config = config;
    this.task = task;
    this.student = student;
    this.padId = padId;
  }

  /** The student's configuration: the pre-trained model's with this task's classifier. */
  public static BertConfig student(JobConfig config, GlueTask task, HfCheckpoint pretrained) {
    List<String> labels = config.labels().isEmpty() ? task.labels() : config.labels();
    return task.isRegression()
        ? pretrained.config().withNumLabels(1)
        : pretrained.config().withLabels(labels);
  }

  public BertConfig student() {
    return student;
  }

  /** cap.loss.* and the method's contrastive switch; no supervised contrast for regression. */
  public CapLossConfig loss() {
    JobConfig.LossSettings l = config.loss();
    Set<Kind> banks = EnumSet.noneOf(Kind.class);
    for (String m : l.modules()) {
      banks.add(
          switch (m) {
            case "prc" -> Kind.PRE;
            case "fic" -> Kind.FINE;
            default -> Kind.SNAP;
          });
    }
    return new CapLossConfig.Builder()
        .wCe((float) l.ceWeight())
        .wKd((float) l.kdWeight())
        .kdTemperature((float) l.kdTemperature())
        .tau((float) l.contrastiveTemperature())
        .wU((float) l.unsupervisedWeight())
        .wS(task.isRegression() ? 0f : (float) l.supervisedWeight())
        .extraExamples(l.extraExamples())
        .representation(Representation.Mode.valueOf(l.representation().toUpperCase(Locale.ROOT)))
        .banks(banks)
        .contrastive(config.prune().method().contrastive())
        .regressionMse(l.regressionMse())
        .build();
  }

  /** What every executor task needs to run the student: micro-batches, padding, device. */
  public TaskSettings worker() {
    return new TaskSettings(
        student,
        config.worker().microBatchSize(),
        config.dynamicPadding() ? 0 : config.maxSeqLength(),
        padId,
        config.worker().useGpu(),
        config.worker().threads(),
        task.isRegression());
  }

  /** cap.spark.exchange-precision: how weights and gradients travel in every training stage. */
  public WirePrecision exchangePrecision() {
    return WirePrecision.parse("cap.spark.exchange-precision", config.spark().exchangePrecision());
  }

  /** The teacher's training: dense (nothing pruned), AdamW with linear warm-up and decay. */
  public DriverUpdate finetuneUpdate(long totalSteps) {
    JobConfig.FinetuneSettings ft = config.finetune();
    OptimizerConfig opt =
        new OptimizerConfig(
            ft.learningRate(),
            ft.learningRate(),
            ft.weightDecay(),
            0.9,
            0.999,
            1e-8,
            ft.maxGradNorm(),
            LinearWarmupDecay.withWarmupRatio(ft.warmupRatio(), totalSteps));
    PruningConfig dense =
        new PruningConfig(
            PruningCriterion.MAGNITUDE,
            SparsitySchedule.constant(1.0, totalSteps),
            false,
            0,
            false,
            0);
    return new DriverUpdate(dense, opt);
  }

  /** Whether cap.prune.method is soft movement pruning (a regularised threshold, no top-k). */
  public boolean softPruning() {
    return criterion() == PruningCriterion.SOFT_MOVEMENT;
  }

  /**
   * Unstructured pruning with cap.prune.method's criterion: the cubic sparsity schedule between the
   * warm-up steps, and AdamW (its own learning rate for the scores).
   *
   * @param warmup the warm-up steps ({@code Preflight.warmupSteps})
   */
  public DriverUpdate pruneUpdate(long totalSteps, long warmup) {
    JobConfig.PruneSettings p = config.prune();
    PruningCriterion criterion = criterion();
    boolean soft = softPruning();
    SparsitySchedule schedule =
        new SparsitySchedule(
            warmup,
            p.initialWarmup(),
            p.finalWarmup(),
            totalSteps,
            soft ? p.softInitialThreshold() : p.initialThreshold(),
            soft ? p.softFinalThreshold() : p.finalThreshold());
    PruningConfig pruning =
        new PruningConfig(
            criterion,
            schedule,
            p.globalTopk(),
            soft ? p.finalLambda() : 0,
            p.freezeEmbeddings(),
            0,
            p.scoreInitMagnitude());
    OptimizerConfig opt =
        new OptimizerConfig(
            p.learningRate(),
            p.scoreLearningRate(),
            p.weightDecay(),
            0.9,
            0.999,
            p.adamEpsilon(),
            p.maxGradNorm(),
            new LinearWarmupDecay(warmup, totalSteps));
    return new DriverUpdate(pruning, opt);
  }

  /** The heads and neurons each step of structured CAP has pruned, cumulatively. */
  public PruneSequence structuredSequence() {
    JobConfig.StructuredSettings st = config.structured();
    return new PruneSequence(st.headFractions(), st.neuronFractions());
  }

  /**
   * One retraining phase of structured CAP: masks fixed (the caller sets them), a fresh AdamW and
   * learning-rate schedule.
   */
  public DriverUpdate structuredRetrainUpdate(long totalSteps) {
    JobConfig.PruneSettings ps = config.prune();
    JobConfig.StructuredSettings st = config.structured();
    OptimizerConfig opt =
        new OptimizerConfig(
            ps.learningRate(),
            ps.learningRate(),
            ps.weightDecay(),
            0.9,
            0.999,
            ps.adamEpsilon(),
            ps.maxGradNorm(),
            LinearWarmupDecay.withWarmupRatio(st.warmupRatio(), totalSteps));
    PruningConfig fixed =
        new PruningConfig(
            PruningCriterion.FIXED,
            SparsitySchedule.constant(1.0, totalSteps),
            false,
            0,
            st.freezeEmbeddings(),
            0);
    return new DriverUpdate(fixed, opt);
  }

  private PruningCriterion criterion() {
    PruneMethod method = config.prune().method();
    return PruningCriterion.valueOf(method.criterion().name());
  }
}
