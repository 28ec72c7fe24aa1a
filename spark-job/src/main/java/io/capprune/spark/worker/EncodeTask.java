package io.capprune.spark.worker;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.train.EncodedExample;
import io.capprune.core.train.Encoder;
import io.capprune.core.train.MicroBatch;
import io.capprune.core.train.MicroBatches;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.broadcast.Broadcast;

/**
 * A no-gradient pass of one model over a partition's examples: bank vectors and logits (teacher,
 * pre-trained model, a snapshot of the student) or dev predictions.
 *
 * @param training encoder dropout on (SnC snapshots, docs/cap-math.md §8.7) or off
 */
public record EncodeTask(
    TaskSettings settings,
    Broadcast<LinkedHashMap<String, HostTensor>> params,
    boolean training,
    Representation.Mode mode,
    long seed)
    implements Serializable {

  /**
   * Vectors [n × H] and logits [n × C] (null without a classifier) of {@code examples}, in order.
   */
  public Encoder.Encoded run(EncodedExample[] examples, int partition) {
    if (examples.length == 0) {
      return new Encoder.Encoded(new float[0], new float[0]);
    }
    return WorkerRuntime.get()
        .exclusive(
            settings.useGpu(),
            device -> {
              WorkerContext ctx = WorkerContext.on(device, settings.threadsForTask());
              DjlRuntime.seed((int) (seed * 31 + partition));
              Encoder encoder = new Encoder(new BertForSequenceClassification(settings.model()));
              int h = settings.model().hiddenSize();
              float[] vectors = new float[examples.length * h];
              float[] logits = null;
              try (var m = ctx.manager().newSubManager()) {
                Map<String, NDArray> arrays =
                    NDArrays.toNDArrays(m, params.value(), DataType.FLOAT32);
                int[] rows = MicroBatches.allRows(examples.length);
                int done = 0;
                for (MicroBatch mb :
                    MicroBatches.of(
                        examples,
                        rows,
                        settings.microBatchSize(),
                        settings.padTo(),
                        settings.padId(),
                        settings.regression())) {
                  Encoder.Encoded e = encoder.encode(m, arrays, mb.tokens(), training, mode);
                  System.arraycopy(e.vectors(), 0, vectors, done * h, e.vectors().length);
                  if (e.logits() != null) {
                    int c = e.logits().length / mb.size();
                    if (logits == null) {
                      logits = new float[examples.length * c];
                    }
                    System.arraycopy(e.logits(), 0, logits, done * c, e.logits().length);
                  }
                  done += mb.size();
                }
              }
              return new Encoder.Encoded(vectors, logits);
            });
  }
}
