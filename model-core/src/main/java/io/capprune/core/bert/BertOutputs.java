package io.capprune.core.bert;

import ai.djl.ndarray.NDArray;

/**
 * What one forward pass of {@link BertForSequenceClassification} produces; all attached to the
 * inputs' manager.
 *
 * @param lastHiddenState [B, T, H]
 * @param pooledOutput [B, H] tanh(dense(h_[CLS])), or null when the parameters have no pooler
 * @param classifierInput [B, H] what enters the classifier: the pooled output (the [CLS] hidden
 *     state when there is no pooler) after classifier dropout in training, equal to it in eval.
 *     CAP's contrastive loss uses this vector in training.
 * @param logits [B, numLabels], or null when the parameters have no classifier
 */
public record BertOutputs(
    NDArray lastHiddenState, NDArray pooledOutput, NDArray classifierInput, NDArray logits) {}
