package io.capprune.spark.pipeline;

/**
 * The names of what a run writes into its output directory, in the order the stages write them
 * (docs/operations.md describes each file).
 */
public final class OutputLayout {
  /** finetune: the teacher, a Hugging Face checkpoint. */
  public static final String TEACHER_DIR = "teacher";

  /** finetune: its metrics.jsonl. */
  public static final String FINETUNE_DIR = "finetune";

  /** prune: committed snapshots, one directory per optimizer step. */
  public static final String SNAPSHOTS_DIR = "snapshots";

  /** structured prune: each retraining phase's metrics.jsonl, in step-N/. */
  public static final String STRUCTURED_DIR = "structured";

  /** structured prune: heads, neurons kept and the dev metric after every step. */
  public static final String STRUCTURED_JSON = "structured.json";

  /** prune: written last, when pruning has finished. */
  public static final String FINAL_MARKER = "_PRUNED";

  /** prune: loss, sparsity and dev-metric plots. */
  public static final String PLOTS_DIR = "plots";

  /** finetune, evaluate: dev metrics of what the directory holds. */
  public static final String METRICS_JSON = "metrics.json";

  /** export: the pruned model, a Hugging Face checkpoint. */
  public static final String MODEL_DIR = "model";

  /** export: kept weights per matrix. */
  public static final String SPARSITY_JSON = "sparsity.json";

  private OutputLayout() {}
}
