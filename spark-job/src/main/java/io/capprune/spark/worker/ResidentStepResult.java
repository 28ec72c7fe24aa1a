package io.capprune.spark.worker;

import io.capprune.core.loss.LossTerms;
import io.capprune.core.prune.UpdateSummary;
import java.io.Serializable;

/**
 * What an executor that keeps the training state sends back for a step: a few numbers instead of
 * the gradient.
 *
 * @param step the step taken (the state is at {@code step + 1} after it)
 * @param terms the batch-mean loss terms
 * @param examples rows of the global batch computed
 * @param summary the update's clipping, learning rates, thresholds and the new masks' sparsity
 * @param workerSeconds forward and backward passes, from the task's start to the loss terms read
 * @param updateSeconds clipping, AdamW, scores and masks on the executor's device
 */
public record ResidentStepResult(
    long step,
    LossTerms terms,
    int examples,
    UpdateSummary summary,
    double workerSeconds,
    double updateSeconds)
    implements Serializable {}
