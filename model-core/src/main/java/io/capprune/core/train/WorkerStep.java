package io.capprune.core.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.BertOutputs;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.ClassificationLoss;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a worker computes for its share of one global batch: every loss term and the dense gradients
 * of the loss with respect to the trainable tensors, in one student forward and one backward pass
 * per micro-batch (the teacher's logits and vectors come from the bank, see docs/architecture.md,
 * differences 1).
 *
 * <p>The trainable tensors arrive as the <em>effective</em> weights W' = W * M and become fresh
 * autograd leaves, so the gradient returned for a pruned matrix is dL/dW', dense; the driver, which
 * owns W, M and the scores S, derives dL/dW = dL/dW' * M and dL/dS = dL/dW' * W (docs/cap-math.md).
 *
 * <p>Each micro-batch's loss is scaled by (its rows / global batch size), so the partitions'
 * gradients add up to the gradient of the batch-mean loss whatever the partitioning.
 *
 * <p>On a GPU the step talks to the host three times: the inputs of all micro-batches go up in one
 * copy before any compute, and after the last backward pass the gradients (flattened and encoded to
 * the wire precision on the device) come down in one copy and the loss terms (summed on the device)
 * in another. Nothing inside the loop reads the device, so kernels queue back to back.
 */
public final class WorkerStep {
  private final BertForSequenceClassification model;
  private final CapLoss capLoss;
  private final Representation.Mode representation;

  /**
   * @param capLoss the CAP objective; null trains on the task loss alone (teacher fine-tuning)
   */
  public WorkerStep(BertForSequenceClassification model, CapLoss capLoss) {
    this.model = model;
    this.capLoss = capLoss;
    this.representation =
        capLoss == null ? Representation.Mode.POOLER : capLoss.config().representation();
  }

  /**
   * @param names the trainable tensors, in the gradient's layout order
   * @param shapes their shapes
   * @param fp32 the flat gradient (FP32 wire), or null
   * @param fp16 the flat gradient as block-scaled halves (FP16 wire), or null
   * @param terms each the sum over micro-batches of (term × rows / global batch): partitions'
   *     values add up to batch means
   */
  public record Result(
      List<String> names,
      List<int[]> shapes,
      float[] fp32,
      HalfBlocks.Encoded fp16,
      LossTerms terms,
      int examples) {

    public WirePrecision precision() {
      return fp16 != null ? WirePrecision.FP16 : WirePrecision.FP32;
    }

    /** The flat gradient in fp32 (decoded when it came as halves). */
    public float[] flatGradient() {
      return fp32 != null ? fp32 : HalfBlocks.decode(fp16);
    }

    /** Per trainable tensor, in layout order (copies). */
    public Map<String, float[]> gradients() {
      float[] flat = flatGradient();
      Map<String, float[]> out = new LinkedHashMap<>();
      int o = 0;
      for (int i = 0; i < names.size(); i++) {
        int n = (int) HostTensor.numel(shapes.get(i));
        out.put(names.get(i), java.util.Arrays.copyOfRange(flat, o, o + n));
        o += n;
      }
      return out;
    }
  }

  /**
   * From heap tensors, for tests and one-off callers: uploads the weights and the bank, and returns
   * fp32 gradients.
   *
   * @param seed seeds this step's dropout and negative draws (the engine's generator)
   */
  public Result run(
      NDManager manager,
      Map<String, NDArray> frozen,
      Map<String, HostTensor> trainable,
      List<MicroBatch> microBatches,
      RepresentationBank bank,
      int globalBatchSize,
      long seed,
      DataType dtype) {
    try (NDManager scope = manager.newSubManager()) {
      DeviceBank deviceBank = bank == null ? null : DeviceBank.upload(scope, bank);
      return run(
          scope,
          frozen,
          FlatParameters.upload(scope, trainable),
          microBatches,
          deviceBank,
          globalBatchSize,
          seed,
          dtype,
          WirePrecision.FP32);
    }
  }

  /**
   * @param manager the worker's manager; everything this step creates is freed before returning
   * @param frozen parameters that get no gradient (e.g. frozen embeddings), already on the device
   * @param trainable effective weights to differentiate, on the device (read, not modified)
   * @param bank the shard's bank on the device (teacher logits, PrC/FiC/SnC slices); may be null
   *     without capLoss
   * @param globalBatchSize rows of the whole global batch, across all partitions
   * @param seed seeds this step's dropout and negative draws (the engine's generator)
   * @param dtype float32 in training; float64 for gradient checks
   * @param wire the precision the gradients are returned in
   */
  public Result run(
      NDManager manager,
      Map<String, NDArray> frozen,
      FlatParameters trainable,
      List<MicroBatch> microBatches,
      DeviceBank bank,
      int globalBatchSize,
      long seed,
      DataType dtype,
      WirePrecision wire) {
    try (NDManager step = manager.newSubManager()) {
      Accumulated a =
          accumulate(step, frozen, trainable, microBatches, bank, globalBatchSize, seed, dtype);
      float[] fp32 = null;
      HalfBlocks.Encoded fp16 = null;
      if (wire == WirePrecision.FP16) {
        fp16 = HalfBlocks.encode(a.gradient());
      } else {
        fp32 = NDArrays.download(a.gradient().toType(DataType.FLOAT32, false));
      }
      return new Result(
          a.names(), a.shapes(), fp32, fp16, LossTerms.of(a.terms().toDoubleArray()), a.examples());
    }
  }

  /**
   * The step's gradient and loss terms, left on the device.
   *
   * @param gradient [P] dL/dW' of every trainable tensor, flattened in layout order
   * @param terms [6] float64 weighted loss terms, in {@link LossTerms#of}'s order
   */
  public record Accumulated(
      List<String> names, List<int[]> shapes, NDArray gradient, NDArray terms, int examples) {}

  /**
   * Forward and backward passes of every micro-batch, gradients accumulated on the device: what
   * {@link #run} does before it encodes and downloads. Everything returned is attached to {@code
   * step}. Reads nothing back from the device.
   */
  public Accumulated accumulate(
      NDManager step,
      Map<String, NDArray> frozen,
      FlatParameters trainable,
      List<MicroBatch> microBatches,
      DeviceBank bank,
      int globalBatchSize,
      long seed,
      DataType dtype) {
    if (capLoss != null && bank == null) {
      throw new IllegalArgumentException("the CAP objective needs the shard's representation bank");
    }
    if (dtype == DataType.BFLOAT16) {
      throw new IllegalArgumentException(NDArrays.BFLOAT16_UNSUPPORTED);
    }
    if (dtype != DataType.FLOAT32 && dtype != DataType.FLOAT64) {
      throw new IllegalArgumentException(
          "the worker step computes in float32 (float64 for gradient" + " checks), not " + dtype);
    }
    DjlRuntime.seed((int) (seed ^ (seed >>> 32)));
    int examples = 0;
    List<StepInputs.Batch> batches =
        StepInputs.upload(step, microBatches, model.config().numLabels());
    Map<String, NDArray> leaves = new LinkedHashMap<>();
    trainable
        .views(step)
        .forEach(
            (name, view) -> {
              NDArray leaf = view.toType(dtype, true);
              leaf.setRequiresGradient(true);
              leaves.put(name, leaf);
            });
    Map<String, NDArray> params = new HashMap<>(frozen);
    params.putAll(leaves);
    // ce, kd, prc, snc, fic, total, as LossTerms.of reads them
    NDArray terms = step.zeros(new Shape(6), DataType.FLOAT64);
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      for (StepInputs.Batch b : batches) {
        double scale = b.size() / (double) globalBatchSize;
        try (NDManager mb = step.newSubManager()) {
          BertInputs in = b.inputs(mb);
          BertOutputs out = model.forward(params, in, true, null);
          NDArray loss;
          NDArray values;
          if (capLoss == null) {
            loss = ClassificationLoss.compute(out.logits(), b.targets(mb), b.regression());
            NDArray ce = loss.stopGradient();
            NDArray zero = mb.zeros(new Shape(), ce.getDataType());
            values = ai.djl.ndarray.NDArrays.stack(new NDList(ce, zero, zero, zero, zero, ce));
          } else {
            NDArray z =
                Representation.compute(
                    representation,
                    out.classifierInput(),
                    out.lastHiddenState(),
                    in.attentionMask());
            CapLoss.Output o =
                capLoss.compute(out.logits(), z, b.targets(mb), b.regression(), bank, b.rows(mb));
            loss = o.total();
            values = o.termValues();
          }
          collector.backward(loss.mul(NDArrays.scalar(mb, scale, loss.getDataType())));
          NDArray weighted =
              values
                  .toType(DataType.FLOAT64, false)
                  .mul(NDArrays.scalar(mb, scale, DataType.FLOAT64));
          terms = terms.add(weighted); // attached to the step, like terms
          examples += b.size();
        }
      }
      // Read inside the collector: gradients are only guaranteed while it is open.
      List<String> names = new ArrayList<>(leaves.keySet());
      List<int[]> shapes = new ArrayList<>();
      NDList flat = new NDList();
      for (NDArray leaf : leaves.values()) {
        shapes.add(NDArrays.toInts(leaf.getShape()));
        flat.add(leaf.getGradient().reshape(-1));
      }
      return new Accumulated(names, shapes, ai.djl.ndarray.NDArrays.concat(flat), terms, examples);
    }
  }
}
