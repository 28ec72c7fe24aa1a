package io.capprune.spark.pipeline.prune;

import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Representation;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.train.Encoder;
import io.capprune.spark.data.Shard;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.pipeline.TrainingSet;
import io.capprune.spark.worker.EncodeTask;
import io.capprune.spark.worker.TaskSettings;
import java.util.LinkedHashMap;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;

/**
 * The representation banks that the pruning stages attach to the training shards: the teacher's
 * logits and FiC vectors and the pre-trained model's PrC vectors once before training
 * (docs/decisions.md decision 5), and a new SnC slice of the student's vectors at each snapshot.
 */
public final class RepresentationBanks {
  private RepresentationBanks() {}

  /** Teacher logits and FiC vectors, and PrC vectors of the pre-trained model, once. */
  public static JavaRDD<Shard> build(
      RunContext run,
      TrainingSet train,
      HfCheckpoint teacher,
      LinkedHashMap<String, HostTensor> pretrainedWeights,
      CapLossConfig loss) {
    JavaSparkContext sc = run.sc();
    TaskSettings ws = run.core().worker();
    Representation.Mode mode = loss.representation();
    Broadcast<LinkedHashMap<String, HostTensor>> teacherB =
        sc.broadcast(new LinkedHashMap<>(teacher.tensors()));
    boolean contrastive = loss.contrastive();
    boolean pre = contrastive && loss.uses(Kind.PRE);
    boolean fine = contrastive && loss.uses(Kind.FINE);
    Broadcast<LinkedHashMap<String, HostTensor>> preB =
        pre ? sc.broadcast(pretrainedWeights) : null;
    long seed = run.config().seed();
    EncodeTask teacherTask = new EncodeTask(ws, teacherB, false, mode, seed);
    EncodeTask preTask = pre ? new EncodeTask(ws, preB, false, mode, seed) : null;
    int numClasses = run.core().student().numLabels();
    int hidden = run.core().student().hiddenSize();
    long n = train.size();
    boolean regression = run.task().isRegression();
    sc.setJobDescription("banks: teacher logits" + (fine ? ", FiC" : "") + (pre ? ", PrC" : ""));
    JavaRDD<Shard> next =
        train
            .shards()
            .map(
                shard -> {
                  Encoder.Encoded t = teacherTask.run(shard.examples(), shard.partition());
                  int[] labels = null;
                  if (!regression) {
                    labels = new int[shard.size()];
                    for (int i = 0; i < labels.length; i++) {
                      labels[i] = shard.example(i).label();
                    }
                  }
                  RepresentationBank bank =
                      new RepresentationBank(
                          shard.globalIndices(), labels, t.logits(), numClasses, hidden, n);
                  if (fine) {
                    bank.addSlice(Kind.FINE, t.vectors());
                  }
                  if (preTask != null) {
                    bank.addSlice(
                        Kind.PRE, preTask.run(shard.examples(), shard.partition()).vectors());
                  }
                  return shard.withBank(bank);
                })
            .persist(StorageLevel.MEMORY_ONLY());
    long t0 = System.nanoTime();
    next.count();
    run.log()
        .info(
            "banks built in {} s: teacher logits{}{}",
            String.format("%.1f", (System.nanoTime() - t0) / 1e9),
            fine ? ", FiC" : "",
            pre ? ", PrC" : "");
    return next;
  }

  /**
   * Adds the student's current vectors as a new SnC slice and unpersists the shards it replaces.
   * The reference encodes unstructured snapshots in train mode (dropout on) and structured ones in
   * eval mode (docs/cap-math.md §1.2).
   *
   * @param training dropout on while encoding
   */
  public static JavaRDD<Shard> withSnapshotSlice(
      RunContext run,
      JavaRDD<Shard> shards,
      LinkedHashMap<String, HostTensor> weights,
      boolean training) {
    JavaSparkContext sc = run.sc();
    Broadcast<LinkedHashMap<String, HostTensor>> w = sc.broadcast(weights);
    EncodeTask snap =
        new EncodeTask(
            run.core().worker(),
            w,
            training,
            run.core().loss().representation(),
            run.config().seed() + 17);
    sc.setJobDescription("SnC snapshot slice");
    JavaRDD<Shard> next =
        shards
            .map(
                shard -> {
                  RepresentationBank bank = shard.bank().copy();
                  bank.addSlice(Kind.SNAP, snap.run(shard.examples(), shard.partition()).vectors());
                  return shard.withBank(bank);
                })
            .persist(StorageLevel.MEMORY_ONLY());
    next.count();
    shards.unpersist(false);
    return next;
  }
}
