package io.capprune.core.structured;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.BertOutputs;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.bert.StructuredMasks;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.ClassificationLoss;
import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.train.MicroBatch;
import java.util.List;
import java.util.Map;

/**
 * One worker's share of CAP-f's importance pass (docs/cap-math.md §3.6): for every batch, a forward
 * pass in eval mode with differentiable copies of the current head and neuron masks, the full loss,
 * a backward pass, and {@code I += |dL/dm|} of that batch. The parameters are constants (no
 * parameter gradient is computed); the pruned units' weights are the stored W, not W * M, so an
 * already-pruned unit still gets a score as in the reference.
 */
public final class MaskImportance {
  private final BertForSequenceClassification model;
  private final CapLoss capLoss;

  /**
   * @param capLoss the objective (CE + KD, plus contrastive terms when on); null = task loss only
   */
  public MaskImportance(BertForSequenceClassification model, CapLoss capLoss) {
    this.model = model;
    this.capLoss = capLoss;
  }

  /**
   * @param params every parameter, on the device, without gradients
   * @param batches each one batch of the importance pass (its |gradient| is added once)
   * @param bank the shard's bank; required with a CAP loss
   */
  public ImportanceScores accumulate(
      NDManager manager,
      Map<String, NDArray> params,
      UnitMasks masks,
      List<MicroBatch> batches,
      RepresentationBank bank,
      long seed,
      DataType dtype) {
    if (capLoss != null && bank == null) {
      throw new IllegalArgumentException(
          "importance with the CAP objective needs the shard's representation bank");
    }
    ImportanceScores sum =
        ImportanceScores.zeros(masks.layers(), masks.headsPerLayer(), masks.neuronsPerLayer());
    double[] heads = sum.heads();
    double[] neurons = sum.neurons();
    long examples = 0;
    DjlRuntime.seed((int) (seed ^ (seed >>> 32)));
    DeviceBank deviceBank = capLoss == null ? null : DeviceBank.upload(manager, bank);
    try {
      for (int i = 0; i < batches.size(); i++) {
        MicroBatch mb = batches.get(i);
        try (NDManager step = manager.newSubManager();
            GradientCollector collector = Engine.getInstance().newGradientCollector()) {
          // Fresh leaves per batch: the gradient read below is this batch's alone.
          StructuredMasks leaves = masks.toNDArrays(step, dtype, true);
          BertInputs in = mb.tokens().toInputs(step);
          BertOutputs out = model.forward(params, in, false, leaves);
          NDArray loss;
          if (capLoss == null) {
            loss = ClassificationLoss.compute(out.logits(), mb.targets());
          } else {
            NDArray z =
                Representation.compute(
                    capLoss.config().representation(),
                    out.classifierInput(),
                    out.lastHiddenState(),
                    in.attentionMask());
            CapLoss.checkBatch(mb.targets(), bank, mb.bankRows());
            loss =
                capLoss
                    .compute(
                        out.logits(),
                        z,
                        targets(step, mb),
                        mb.targets().isRegression(),
                        deviceBank,
                        NDArrays.owned(step.create(NDArrays.toLongs(mb.bankRows()))))
                    .total();
          }
          collector.backward(loss);
          addAbs(heads, leaves.headMask().getGradient());
          addAbs(neurons, leaves.neuronMask().getGradient());
          examples += mb.size();
        }
      }
    } finally {
      if (deviceBank != null) {
        deviceBank.close();
      }
    }
    return new ImportanceScores(sum.layers(), heads, neurons, examples);
  }

  private static NDArray targets(NDManager m, MicroBatch mb) {
    return mb.targets().isRegression()
        ? NDArrays.owned(m.create(mb.targets().scores()))
        : NDArrays.owned(m.create(NDArrays.toLongs(mb.targets().classes())));
  }

  private static void addAbs(double[] into, NDArray grad) {
    double[] g = grad.toType(DataType.FLOAT64, false).toDoubleArray();
    for (int i = 0; i < into.length; i++) {
      into[i] += Math.abs(g[i]);
    }
  }
}
