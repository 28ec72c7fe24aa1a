package io.capprune.spark.pipeline;

import java.util.Optional;

/**
 * One step of a CAP run over an output directory. A stage reads what the stages before it wrote
 * (through the {@link RunContext}), so each can also run alone, as its CLI command does.
 *
 * @param <R> what the stage hands its caller: the dev metrics it scored, or {@link Void}
 */
public interface Stage<R> {

  /** The stage's name, as its log lines and CLI command spell it. */
  String name();

  /**
   * Why this stage's output is complete already, for the "skipped" log line; empty when the stage
   * has work to do. {@link CapPipeline#run} skips a stage that answers.
   */
  Optional<String> completeOutput(RunContext run);

  /** Does the stage's work; refuses (with the reason) when its output must not be replaced. */
  R run(RunContext run);
}
