package io.capprune.core.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.BertOutputs;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.ClassificationLoss;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a worker computes for its share of one global batch: every loss term and the dense
 * gradients of the loss with respect to the trainable tensors, in one student forward and one
 * backward pass per micro-batch (cap-reference 4.1 b, without the teacher forward: the teacher's
 * logits and vectors come from the bank).
 *
 * <p>The trainable tensors arrive as the <em>effective</em> weights W' = W * M and become fresh
 * autograd leaves, so the gradient returned for a pruned matrix is dL/dW', dense; the driver, which
 * owns W, M and the scores S, derives dL/dW = dL/dW' * M and dL/dS = dL/dW' * W (cap-reference 3.2).
 *
 * <p>Each micro-batch's loss is scaled by (its rows / global batch size), so the partitions'
 * gradients add up to the gradient of the batch-mean loss whatever the partitioning.
 */
public final class WorkerStep {
  /** Order of {@link Result#lossTerms()}: weighted sums over the micro-batches. */
  public static final List<String> TERMS = List.of("ce", "kd", "prc", "snc", "fic", "total");

  private final BertForSequenceClassification model;
  private final CapLoss capLoss;
  private final Representation.Mode representation;

  /**
   * @param capLoss the CAP objective; null trains on the task loss alone (teacher fine-tuning)
   */
  public WorkerStep(BertForSequenceClassification model, CapLoss capLoss) {
    this.model = model;
    this.capLoss = capLoss;
    this.representation = capLoss == null ? Representation.Mode.POOLER : capLoss.config().representation();
  }

  /**
   * @param lossTerms ce, kd, prc, snc, fic, total (see {@link #TERMS}), each the sum over
   *     micro-batches of (term × rows / global batch): partitions' values add up to batch means
   * @param gradients per trainable tensor, float32, same order as the input
   */
  public record Result(Map<String, float[]> gradients, double[] lossTerms, int examples) {}

  /**
   * @param manager the worker's manager; everything this step creates is freed before returning
   * @param frozen parameters that get no gradient (e.g. frozen embeddings), already on the device
   * @param trainable effective weights to differentiate, by name
   * @param bank the shard's bank (teacher logits, PrC/FiC/SnC slices); may be null without capLoss
   * @param globalBatchSize rows of the whole global batch, across all partitions
   * @param seed seeds this step's negative draws; dropout uses the engine's RNG
   * @param dtype float32 in training; float64 for gradient checks
   */
  public Result run(NDManager manager, Map<String, NDArray> frozen, Map<String, HostTensor> trainable,
      List<MicroBatch> microBatches, RepresentationBank bank, int globalBatchSize, long seed,
      DataType dtype) {
    if (capLoss != null && bank == null) {
      throw new IllegalArgumentException("the CAP objective needs the shard's representation bank");
    }
    double[] terms = new double[TERMS.size()];
    int examples = 0;
    try (NDManager step = manager.newSubManager()) {
      Map<String, NDArray> params = new HashMap<>(frozen);
      Map<String, NDArray> leaves = new LinkedHashMap<>();
      for (Map.Entry<String, HostTensor> e : trainable.entrySet()) {
        NDArray leaf = NDArrays.toNDArray(step, e.getValue(), dtype);
        leaf.setRequiresGradient(true);
        leaves.put(e.getKey(), leaf);
        params.put(e.getKey(), leaf);
      }
      Map<String, float[]> gradients = new LinkedHashMap<>();
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        for (int i = 0; i < microBatches.size(); i++) {
          MicroBatch mb = microBatches.get(i);
          double scale = mb.size() / (double) globalBatchSize;
          try (NDManager mbManager = step.newSubManager()) {
            BertInputs in = mb.tokens().toInputs(mbManager);
            BertOutputs out = model.forward(params, in, true, null);
            NDArray loss;
            LossTerms t;
            if (capLoss == null) {
              loss = ClassificationLoss.compute(out.logits(), mb.targets());
              double ce = loss.toType(DataType.FLOAT64, false).getDouble();
              t = new LossTerms(ce, 0, 0, 0, 0, ce);
            } else {
              NDArray z = Representation.compute(representation, out.classifierInput(),
                  out.lastHiddenState(), in.attentionMask());
              CapLoss.Output o = capLoss.compute(out.logits(), z, mb.targets(), bank, mb.bankRows(),
                  seed * 1_000_003L + i);
              loss = o.total();
              t = o.terms();
            }
            collector.backward(loss.mul(NDArrays.scalar(mbManager, scale, loss.getDataType())));
            terms[0] += t.ce() * scale;
            terms[1] += t.kd() * scale;
            terms[2] += t.prc() * scale;
            terms[3] += t.snc() * scale;
            terms[4] += t.fic() * scale;
            terms[5] += t.total() * scale;
            examples += mb.size();
          }
        }
        // Read inside the collector: gradients are only guaranteed while it is open.
        for (Map.Entry<String, NDArray> e : leaves.entrySet()) {
          NDArray g = e.getValue().getGradient();
          gradients.put(e.getKey(), g.toType(DataType.FLOAT32, false).toFloatArray());
        }
      }
      return new Result(gradients, terms, examples);
    }
  }
}
