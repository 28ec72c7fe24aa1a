package io.capprune.core.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.BertOutputs;
import io.capprune.core.loss.Representation;
import java.util.Map;

/**
 * No-gradient forward passes: bank vectors (PrC from the pre-trained model, FiC and the
 * distillation logits from the teacher, SnC from the student at a snapshot) and dev predictions.
 *
 * <p>Bank vectors are taken before the classifier dropout (docs/cap-math.md §1.1); whether the
 * encoder's own dropout is on is the caller's choice: the reference encodes SnC snapshots in train
 * mode and everything else in eval mode (docs/cap-math.md §1.2 and 8.7).
 */
public final class Encoder {
  private final BertForSequenceClassification model;

  public Encoder(BertForSequenceClassification model) {
    this.model = model;
  }

  /**
   * @param vectors [B × H] L2-normalised representations, row-major
   * @param logits [B × C] classifier outputs, or null when the parameters have no classifier
   */
  public record Encoded(float[] vectors, float[] logits) {}

  public Encoded encode(
      NDManager manager,
      Map<String, NDArray> params,
      TokenBatch tokens,
      boolean training,
      Representation.Mode mode) {
    try (NDManager m = manager.newSubManager()) {
      BertInputs in = tokens.toInputs(m);
      BertOutputs out = model.forward(params, in, training, null);
      NDArray pooled =
          out.pooledOutput() != null
              ? out.pooledOutput()
              : out.lastHiddenState().get(new NDIndex(":, 0, :"));
      NDArray z = Representation.compute(mode, pooled, out.lastHiddenState(), in.attentionMask());
      float[] vectors = z.toType(DataType.FLOAT32, false).toFloatArray();
      float[] logits =
          out.logits() == null ? null : out.logits().toType(DataType.FLOAT32, false).toFloatArray();
      return new Encoded(vectors, logits);
    }
  }
}
