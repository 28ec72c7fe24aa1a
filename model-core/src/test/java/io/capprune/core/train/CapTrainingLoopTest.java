package io.capprune.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInit;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.glue.GlueData;
import io.capprune.core.glue.GlueExample;
import io.capprune.core.glue.GlueReader;
import io.capprune.core.glue.SyntheticGlueTask;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Representation;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.text.BertTokenizer;
import io.capprune.core.text.Encoding;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The training loop of CAP-m without Spark: WorkerStep on the whole global batch, DriverUpdate on
 * its gradients, on the generated sentiment task and a tiny random BERT. The loss must fall while
 * the masks follow the cubic schedule exactly.
 *
 * <p>The pre-trained model is the random init (PrC bank); the teacher is that init fine-tuned on
 * the task (FiC bank and distillation logits), as the pipeline's finetune stage makes it. A teacher
 * equal to the init was tried first: then every bank vector is nearly the same, the contrastive
 * terms sit at their floor (about log M) and KD at 0, and the loss cannot fall. A random init also
 * stays on a plateau for about 60 steps before its classifier learns anything, hence 200 steps
 * rather than 50 (about 10 s in all with one thread).
 */
class CapTrainingLoopTest {

  static final int N = 320;
  static final int BATCH = 16;
  static final int MICRO_BATCH = 8;
  static final int STEPS = 200;
  static final int MAX_SEQ = 24;
  static final long SEED = 42;
  static final int TEACHER_STEPS = 200;

  /** Dense for the first 10 steps, cubic ramp to 50 % kept at step 180, then constant. */
  static final SparsitySchedule SCHEDULE = new SparsitySchedule(10, 1, 2, STEPS, 1.0, 0.5);

  static EncodedExample[] trainRows(BertTokenizer tokenizer) {
    SyntheticGlueTask task = new SyntheticGlueTask(N, 16, SEED, 0.05);
    GlueData data =
        GlueReader.of(SyntheticGlueTask.format())
            .read("train", new StringReader(task.trainTsv()), "synthetic train.tsv");
    assertEquals(N, data.size());
    List<EncodedExample> rows = new ArrayList<>();
    for (GlueExample e : data.examples()) {
      Encoding enc = tokenizer.encode(e.textA(), e.textB(), MAX_SEQ);
      byte[] types = new byte[enc.length()];
      for (int i = 0; i < types.length; i++) {
        types[i] = (byte) enc.tokenTypeIds()[i];
      }
      rows.add(new EncodedExample(e.index(), enc.inputIds(), types, e.label(), e.score()));
    }
    return rows.toArray(EncodedExample[]::new);
  }

  /** The pipeline's micro-batches: padded to their longest row, classification targets. */
  static List<MicroBatch> microBatches(EncodedExample[] data, int[] rows, int size, int padId) {
    return MicroBatches.of(data, rows, size, 0, padId, false);
  }

  /** Pooled vectors (before the classifier dropout) and logits of every training row, eval mode. */
  static Encoder.Encoded encodeAll(
      NDManager manager,
      BertConfig config,
      Map<String, HostTensor> params,
      EncodedExample[] data,
      int padId) {
    Encoder encoder = new Encoder(new BertForSequenceClassification(config));
    int h = config.hiddenSize();
    float[] vectors = new float[N * h];
    float[] logits = new float[N * config.numLabels()];
    int[] all = new int[N];
    Arrays.setAll(all, i -> i);
    try (NDManager m = manager.newSubManager()) {
      Map<String, NDArray> arrays = NDArrays.toNDArrays(m, params, DataType.FLOAT32);
      int done = 0;
      for (MicroBatch mb : microBatches(data, all, 64, padId)) {
        Encoder.Encoded e =
            encoder.encode(m, arrays, mb.tokens(), false, Representation.Mode.POOLER);
        System.arraycopy(e.vectors(), 0, vectors, done * h, e.vectors().length);
        System.arraycopy(e.logits(), 0, logits, done * config.numLabels(), e.logits().length);
        done += mb.size();
      }
    }
    return new Encoder.Encoded(vectors, logits);
  }

  /**
   * Bank rows = training rows: PRE from the pre-trained model, FINE and the logits from the
   * teacher.
   */
  static RepresentationBank bank(
      BertConfig config, EncodedExample[] data, Encoder.Encoded pre, Encoder.Encoded teacher) {
    long[] index = new long[N];
    int[] labels = new int[N];
    for (int i = 0; i < N; i++) {
      index[i] = i;
      labels[i] = data[i].label();
    }
    RepresentationBank bank =
        new RepresentationBank(
            index, labels, teacher.logits(), config.numLabels(), config.hiddenSize());
    bank.addSlice(Kind.PRE, pre.vectors());
    bank.addSlice(Kind.FINE, teacher.vectors());
    return bank;
  }

  /** Fraction of rows whose argmax logit is the label. */
  static double accuracy(float[] logits, EncodedExample[] data) {
    int right = 0;
    for (int i = 0; i < data.length; i++) {
      int predicted = logits[2 * i + 1] > logits[2 * i] ? 1 : 0;
      right += predicted == data[i].label() ? 1 : 0;
    }
    return right / (double) data.length;
  }

  /** The global batch of step t: the t-th slice of a seeded permutation per epoch. */
  static int[] batch(int t) {
    int epoch = t * BATCH / N;
    long[] order = permutation(N, SEED + epoch);
    int[] rows = new int[BATCH];
    for (int i = 0; i < BATCH; i++) {
      rows[i] = (int) order[(t * BATCH + i) % N];
    }
    return rows;
  }

  /**
   * The finetune stage in small: the random init trained on the task loss alone, dense, nothing
   * frozen. Gives the bank a teacher whose logits and vectors carry the labels.
   */
  static Map<String, HostTensor> fineTunedTeacher(
      NDManager manager,
      BertConfig config,
      Map<String, HostTensor> init,
      EncodedExample[] data,
      int padId) {
    DriverUpdate dense =
        new DriverUpdate(
            new PruningConfig(
                PruningCriterion.MAGNITUDE,
                SparsitySchedule.constant(1.0, TEACHER_STEPS),
                false,
                0,
                false,
                0),
            new OptimizerConfig(
                3e-3,
                3e-3,
                0.0,
                0.9,
                0.999,
                1e-8,
                1.0,
                LinearWarmupDecay.withWarmupRatio(0.1, TEACHER_STEPS)));
    TrainingState state = dense.initialState(copy(init));
    WorkerStep worker = new WorkerStep(new BertForSequenceClassification(config), null);
    for (int t = 0; t < TEACHER_STEPS; t++) {
      LinkedHashMap<String, HostTensor> trainable = state.effectiveWeights();
      // the step seeds the engine's generator (dropout) from its seed argument, t
      WorkerStep.Result r =
          worker.run(
              manager,
              Map.of(),
              trainable,
              microBatches(data, batch(t), BATCH, padId),
              null,
              BATCH,
              t,
              DataType.FLOAT32);
      dense.apply(state, gradients(r, trainable));
    }
    return state.weights();
  }

  static Map<String, HostTensor> gradients(WorkerStep.Result r, Map<String, HostTensor> like) {
    Map<String, HostTensor> grads = new LinkedHashMap<>();
    r.gradients().forEach((name, g) -> grads.put(name, new HostTensor(like.get(name).shape(), g)));
    return grads;
  }

  static double mean(double[] x, int from, int to) {
    double s = 0;
    for (int i = from; i < to; i++) {
      s += x[i];
    }
    return s / (to - from);
  }

  @Test
  void lossFallsWhileMasksFollowTheSchedule() {
    DjlRuntime.start(1);
    List<String> vocabulary = SyntheticGlueTask.vocabulary();
    BertTokenizer tokenizer = new BertTokenizer(vocabulary);
    EncodedExample[] data = trainRows(tokenizer);
    BertConfig config =
        BertConfig.builder()
            .vocabSize(vocabulary.size())
            .hiddenSize(32)
            .numHiddenLayers(2)
            .numAttentionHeads(4)
            .intermediateSize(64)
            .maxPositionEmbeddings(MAX_SEQ)
            .build();

    DriverUpdate update =
        new DriverUpdate(
            PruningConfig.of(PruningCriterion.MOVEMENT, SCHEDULE, 0),
            new OptimizerConfig(
                5e-3, 1e-2, 0.0, 0.9, 0.999, 1e-8, 1.0, new LinearWarmupDecay(10, STEPS)));
    LinkedHashMap<String, HostTensor> init = new LinkedHashMap<>(BertInit.init(config, 3));
    CapLoss capLoss = new CapLoss(CapLossConfig.defaults());
    WorkerStep worker = new WorkerStep(new BertForSequenceClassification(config), capLoss);

    double[] losses = new double[STEPS];
    double[] kd = new double[STEPS];
    double[] fic = new double[STEPS];
    try (NDManager base = NDManager.newBaseManager()) {
      int pad = tokenizer.padId();
      // pre-trained model = the random init; teacher = the init fine-tuned on the task
      Encoder.Encoded pre = encodeAll(base, config, init, data, pad);
      Encoder.Encoded teacher =
          encodeAll(base, config, fineTunedTeacher(base, config, init, data, pad), data, pad);
      double teacherAccuracy = accuracy(teacher.logits(), data);
      assertTrue(
          teacherAccuracy > 0.75,
          "the teacher learned the task: train accuracy " + teacherAccuracy);
      RepresentationBank bank = bank(config, data, pre, teacher);

      TrainingState state = update.initialState(copy(init));
      assertEquals(1.0, SCHEDULE.valueAt(0));
      assertEquals(state.sparsity().totalNumel(), state.sparsity().totalKept(), "dense at step 0");
      Map<String, NDArray> frozen = new LinkedHashMap<>();
      for (String name : state.frozen()) {
        frozen.put(name, NDArrays.toNDArray(base, state.weights().get(name), DataType.FLOAT32));
      }
      assertEquals(5, frozen.size(), "embeddings are frozen");

      for (int t = 0; t < STEPS; t++) {
        LinkedHashMap<String, HostTensor> trainable = state.effectiveWeights();
        trainable.keySet().removeAll(state.frozen());
        // the step seeds the engine's generator (dropout, negatives) from its seed argument
        WorkerStep.Result r =
            worker.run(
                base,
                frozen,
                trainable,
                microBatches(data, batch(t), MICRO_BATCH, pad),
                bank,
                BATCH,
                SEED * 7919 + t,
                DataType.FLOAT32);
        assertEquals(BATCH, r.examples());

        UpdateSummary s = update.apply(state, gradients(r, trainable));
        losses[t] = r.terms().total() + s.regularizerLoss();
        kd[t] = r.terms().kd();
        fic[t] = r.terms().fic();
        assertEquals(t + 1, state.step());
        assertEquals(SCHEDULE.valueAt(t + 1), s.nextThreshold(), 0.0, "step " + t);
        assertMasksFollow(state, SCHEDULE.valueAt(t + 1), "after step " + t);
        assertEquals(
            state.sparsity().totalKept(), s.sparsity().totalKept(), "reported kept, step " + t);
      }
      assertMasksFollow(state, 0.5, "at the end");
      assertEquals(
          0.5, state.sparsity().totalKept() / (double) state.sparsity().totalNumel(), 1e-12);
    }

    double first = mean(losses, 0, 10);
    double last = mean(losses, STEPS - 10, STEPS);
    System.out.printf(
        "CAP-m loop, %d steps of %d rows, 50 %% kept at the end: mean of the first / last 10"
            + " steps: loss %.3f / %.3f (%.0f %%), KD %.3f / %.3f, FiC %.3f / %.3f%n",
        STEPS,
        BATCH,
        first,
        last,
        100 * last / first,
        mean(kd, 0, 10),
        mean(kd, STEPS - 10, STEPS),
        mean(fic, 0, 10),
        mean(fic, STEPS - 10, STEPS));
    assertTrue(last < 0.85 * first, "loss falls: first 10 steps " + first + ", last 10 " + last);
    // the student learns the teacher (KD) and its representation (FiC), not only the easy terms
    assertTrue(
        mean(kd, STEPS - 10, STEPS) < 0.8 * mean(kd, 0, 10), "KD falls: " + Arrays.toString(kd));
    assertTrue(
        mean(fic, STEPS - 10, STEPS) < 0.8 * mean(fic, 0, 10),
        "FiC falls: " + Arrays.toString(fic));
  }

  /**
   * Every prunable matrix keeps exactly int(theta * n) entries, those with the highest scores, and
   * the next forward pass sees exactly those weights.
   */
  static void assertMasksFollow(TrainingState state, double theta, String when) {
    Map<String, HostTensor> effective = state.effectiveWeights();
    assertEquals(6 * 2, state.masks().size(), "6 prunable matrices per layer, 2 layers " + when);
    for (Map.Entry<String, HostTensor> e : state.masks().entrySet()) {
      String name = e.getKey();
      float[] mask = e.getValue().data();
      float[] scores = state.scores().get(name).data();
      float[] w = effective.get(name).data();
      int n = mask.length;
      long kept = 0;
      float minKept = Float.POSITIVE_INFINITY;
      float maxDropped = Float.NEGATIVE_INFINITY;
      for (int i = 0; i < n; i++) {
        if (mask[i] == 1f) {
          kept++;
          minKept = Math.min(minKept, scores[i]);
        } else {
          assertEquals(0f, mask[i], name + " mask is binary");
          assertTrue(w[i] == 0f, name + " pruned entry is 0 (or -0) in the effective weight");
          maxDropped = Math.max(maxDropped, scores[i]);
        }
      }
      assertEquals(
          (long) (theta * n), kept, name + " keeps int(" + theta + " * " + n + ") " + when);
      assertTrue(minKept >= maxDropped, name + ": kept scores >= dropped scores " + when);
    }
  }

  static LinkedHashMap<String, HostTensor> copy(Map<String, HostTensor> params) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    params.forEach((k, v) -> out.put(k, v.copy()));
    return out;
  }

  static long[] permutation(int n, long seed) {
    long[] p = new long[n];
    Arrays.setAll(p, i -> i);
    SplittableRandom rng = new SplittableRandom(seed);
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      long x = p[i];
      p[i] = p[j];
      p[j] = x;
    }
    return p;
  }
}
