package io.capprune.core.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInit;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.DeviceWeights;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Targets;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DeviceDriverUpdate;
import io.capprune.core.prune.ParameterNames;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.train.MicroBatch;
import io.capprune.core.train.TokenBatch;
import io.capprune.core.train.WorkerStep;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * The worker step on a GPU (or the CPU), without Spark: what docs/results.md's GPU table reports.
 * Run on the GPU machine through the kit (docs/performance.md says how), or here with {@code
 * --device=cpu}:
 *
 * <pre>
 * java -cp ... io.capprune.core.bench.WorkerStepBenchmark [--device=gpu|cpu] [--sizes=base,minilm]
 *     [--reps=20] [--warm=3] [--micro=4] [--sparsity=0.9] [--check]
 * </pre>
 *
 * <p>Per size (BERT-base 12 x 768, MiniLM 6 x 384; batch 32, length 128, fp32, random weights from
 * BertInit, embeddings frozen on the device, an 8,192-row bank with PRE, FINE and one SNAP slice,
 * the default CAP objective with 4,096 extra negatives per bank, encoder Linear weights masked at
 * {@code --sparsity}), medians of {@code --reps} timed steps:
 *
 * <ul>
 *   <li>plain and CAP step as the job runs it: the packed fp16 weight stream uploaded and scattered
 *       on the device (with a new mask set every step, as during the sparsity ramp), forward,
 *       backward, gradients encoded to fp16 on the device and downloaded;
 *   <li>the same with the weights already on the device and the gradients left there;
 *   <li>the weight upload (fp16 and fp32 wire) and the gradient download (fp16 encoded on the
 *       device, and fp32) alone;
 *   <li>{@code --micro} micro-batches of 32 per step as the job runs it, per 32 examples.
 * </ul>
 *
 * {@code --check} first compares one CAP step (dropout off, no extra negatives, so that the two
 * engines draw nothing) on the CPU and on the device, and the device's fp16 encoding of a gradient
 * with the host's, bit for bit.
 */
public final class WorkerStepBenchmark {
  static final long SEED = 8L;
  static final int BATCH = 32;
  static final int SEQ = 128;
  static final int BANK_ROWS = 8192;

  public static void main(String[] args) {
    String deviceName = "gpu";
    List<String> sizes = List.of("base", "minilm");
    int reps = 20;
    int warm = 3;
    int micro = 4;
    double sparsity = 0.9;
    boolean check = false;
    for (String a : args) {
      String v = a.contains("=") ? a.substring(a.indexOf('=') + 1) : "";
      if (a.startsWith("--device=")) {
        deviceName = v;
      } else if (a.startsWith("--sizes=")) {
        sizes = Arrays.asList(v.split(","));
      } else if (a.startsWith("--reps=")) {
        reps = Integer.parseInt(v);
      } else if (a.startsWith("--warm=")) {
        warm = Integer.parseInt(v);
      } else if (a.startsWith("--micro=")) {
        micro = Integer.parseInt(v);
      } else if (a.startsWith("--sparsity=")) {
        sparsity = Double.parseDouble(v);
      } else if (a.equals("--check")) {
        check = true;

      } else {
        throw new IllegalArgumentException("unknown argument " + a);
      }
    }
    DjlRuntime.configureOffline();
    Engine engine = DjlRuntime.start(Runtime.getRuntime().availableProcessors());
    Device device = deviceName.equals("cpu") ? Device.cpu() : Device.gpu(0);
    System.out.printf(
        "engine %s %s, device %s, GPUs %d, intra-op threads %d, batch %d, length %d,"
            + " sparsity %.2f, reps %d (+%d warm-up)%n",
        engine.getEngineName(),
        engine.getVersion(),
        device,
        engine.getGpuCount(),
        DjlRuntime.numThreads(),
        BATCH,
        SEQ,
        sparsity,
        reps,
        warm);
    List<String[]> rows = new ArrayList<>();
    if (check) {
      check(device, rows);
    }
    for (String size : sizes) {
      BertConfig c =
          switch (size) {
            case "base" -> config(30522, 768, 12, 3072, 0.1f);
            case "minilm" -> config(30522, 384, 6, 1536, 0.1f);
            case "tiny" -> config(200, 64, 2, 128, 0.1f);
            default -> throw new IllegalArgumentException("size " + size);
          };
      try (Setup s = new Setup(device, c, sparsity, micro)) {
        s.time(size, reps, warm, rows);
      }
    }
    System.out.printf(
        "%nhost buffers for GPU transfers: %s%n", io.capprune.core.tensor.PinnedMemory.describe());
    System.out.printf("%n| figure | ms | notes |%n|---|---|---|%n");
    for (String[] r : rows) {
      System.out.printf("| %s | %s | %s |%n", r[0], r[1], r[2]);
    }
  }

  static BertConfig config(int vocab, int hidden, int layers, int ffn, float dropout) {
    return BertConfig.builder()
        .vocabSize(vocab)
        .hiddenSize(hidden)
        .numHiddenLayers(layers)
        .numAttentionHeads(hidden >= 384 ? 12 : 2)
        .intermediateSize(ffn)
        .dropout(dropout)
        .build();
  }

  /** Weights, masks, packed streams, bank and micro-batches of one model size on one device. */
  static final class Setup implements AutoCloseable {
    final NDManager manager;
    final BertConfig config;
    final Map<String, NDArray> frozen;
    final LinkedHashMap<String, HostTensor> trainable = new LinkedHashMap<>();
    final Map<String, HostTensor> masks = new LinkedHashMap<>();
    final List<String> names;
    final RepresentationBank bank;
    final DeviceBank deviceBank;
    final List<MicroBatch> one;
    final List<MicroBatch> many;
    final DeviceWeights deviceWeights;
    final WorkerStep plain;
    final WorkerStep cap;

    Setup(Device device, BertConfig c, double sparsity, int micro) {
      this.manager = NDManager.newBaseManager(device);
      this.config = c;
      Map<String, HostTensor> all = BertInit.init(c, SEED);
      LinkedHashMap<String, HostTensor> frozenHost = new LinkedHashMap<>();
      SplittableRandom r = new SplittableRandom(SEED);
      all.forEach(
          (k, v) -> {
            if (ParameterNames.isEmbedding(k)) {
              frozenHost.put(k, v);
            } else {
              trainable.put(k, v);
              if (ParameterNames.isPrunable(k)) {
                float[] m = new float[v.numel()];
                for (int i = 0; i < m.length; i++) {
                  m[i] = r.nextDouble() < sparsity ? 0f : 1f;
                }
                masks.put(k, new HostTensor(v.shape(), m));
              }
            }
          });
      this.frozen = NDArrays.toNDArrays(manager, frozenHost, DataType.FLOAT32);
      this.names = new ArrayList<>(trainable.keySet());
      this.bank = bank(BANK_ROWS, c.hiddenSize());
      this.deviceBank = DeviceBank.upload(manager, bank);
      this.one = List.of(microBatch(c.vocabSize(), 0));
      List<MicroBatch> m = new ArrayList<>();
      for (int i = 0; i < micro; i++) {
        m.add(microBatch(c.vocabSize(), i * BATCH));
      }
      this.many = m;
      this.deviceWeights = DeviceWeights.on(manager);
      this.plain = new WorkerStep(new BertForSequenceClassification(c), null);
      this.cap =
          new WorkerStep(
              new BertForSequenceClassification(c), new CapLoss(CapLossConfig.defaults()));
    }

    /** A fresh mask set (new id, same bits): the worker rebuilds its keep pattern, as in a ramp. */
    PackedWeights packed(WirePrecision p) {
      return PackedWeights.pack(trainable, masks, names, MaskSet.of(masks), p);
    }

    /** One step as the job runs it; returns after the gradients and terms reached the heap. */
    void jobStep(WorkerStep step, PackedWeights packed, MaskSet set, List<MicroBatch> mbs) {
      try (NDManager scope = manager.newSubManager()) {
        FlatParameters w = deviceWeights.unpack(packed, set, scope);
        step.run(
            scope,
            frozen,
            w,
            mbs,
            deviceBank,
            BATCH * mbs.size(),
            SEED,
            DataType.FLOAT32,
            packed.precision());
      }
    }

    void time(String size, int reps, int warm, List<String[]> rows) {
      String name = size.equals("base") ? "BERT-base" : size.equals("minilm") ? "MiniLM" : size;
      long params = trainable.values().stream().mapToLong(HostTensor::numel).sum();
      System.out.printf(
          "%n== %s: %d trainable values, %d masked matrices%n", name, params, masks.size());
      // the packing is the driver's work: done outside the timed region, one stream per step
      List<PackedWeights> streams16 = new ArrayList<>();
      List<MaskSet> sets = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        MaskSet set = MaskSet.of(masks);
        sets.add(set);
        streams16.add(PackedWeights.pack(trainable, masks, names, set, WirePrecision.FP16));
      }
      MaskSet none = MaskSet.none();
      PackedWeights dense32 = PackedWeights.pack(trainable, masks, names, none, WirePrecision.FP32);
      int[] k = {0};
      Supplier<Integer> next = () -> k[0]++ % 2;
      double plainJob =
          median(
              reps,
              warm,
              () -> {
                int i = next.get();
                jobStep(plain, streams16.get(i), sets.get(i), one);
              });
      double capJob =
          median(
              reps,
              warm,
              () -> {
                int i = next.get();
                jobStep(cap, streams16.get(i), sets.get(i), one);
              });
      double capMicro =
          median(
              Math.max(3, reps / 2),
              warm,
              () -> {
                int i = next.get();
                jobStep(cap, streams16.get(i), sets.get(i), many);
              });
      double plainResident;
      double capResident;
      try (NDManager resident = manager.newSubManager()) {
        FlatParameters w = deviceWeights.unpack(streams16.get(0), sets.get(0), resident);
        plainResident = median(reps, warm, () -> residentStep(plain, w));
        capResident = median(reps, warm, () -> residentStep(cap, w));
      }
      double capWithUpdate = updateResident(reps, warm);
      double up16 =
          median(
              reps,
              warm,
              () -> {
                int i = next.get();
                try (NDManager scope = manager.newSubManager()) {
                  deviceWeights
                      .unpack(streams16.get(i), sets.get(i), scope)
                      .values()
                      .get(0)
                      .getFloat();
                }
              });
      double up32dense =
          median(
              reps,
              warm,
              () -> {
                try (NDManager scope = manager.newSubManager()) {
                  deviceWeights.unpack(dense32, none, scope).values().get(0).getFloat();
                }
              });
      double down16;
      double down32;
      try (NDManager scope = manager.newSubManager()) {
        NDArray g = manager.randomNormal(new ai.djl.ndarray.types.Shape(params));
        g.attach(scope);
        g.get(0).getFloat();
        down16 = median(reps, warm, () -> HalfBlocks.encode(g));
        down32 = median(reps, warm, () -> NDArrays.download(g));
      }
      String m = many.size() + " x " + BATCH;
      rows.add(
          new String[] {
            name + ": plain step as the job runs it",
            f(plainJob),
            "fp16 stream up + scatter (new masks), fwd+bwd, fp16 gradients encoded on the device and down"
          });
      rows.add(
          new String[] {
            name + ": CAP step as the job runs it",
            f(capJob),
            "the same with CE + KD + PrC/FiC/SnC, 4,096 negatives per bank; CAP/plain "
                + String.format("%.2f", capJob / plainJob)
          });
      rows.add(
          new String[] {
            name + ": plain step, weights resident, gradients left on the device",
            f(plainResident),
            ""
          });
      rows.add(
          new String[] {
            name + ": CAP step, weights resident, gradients left on the device",
            f(capResident),
            "CAP/plain " + String.format("%.2f", capResident / plainResident)
          });
      rows.add(
          new String[] {
            name + ": CAP step with the update resident next to it",
            f(capWithUpdate),
            "W * M from the device update's state, CAP forward and backward, then clipping, AdamW on"
                + " weights and scores, movement top-k on the same device; one 8-byte read per step"
          });
      rows.add(
          new String[] {
            name + ": CAP step as the job runs it, " + m + " micro-batches",
            f(capMicro),
            String.format("%.1f ms per %d examples", capMicro / many.size(), BATCH)
          });
      rows.add(
          new String[] {
            name + ": weights up, fp16 stream at the masks' sparsity, scattered",
            f(up16),
            String.format("%.1f MB on the wire", streams16.get(0).payloadBytes() / 1e6)
          });
      rows.add(
          new String[] {
            name + ": weights up, fp32, dense (no masks)",
            f(up32dense),
            String.format("%.1f MB", dense32.payloadBytes() / 1e6)
          });
      rows.add(
          new String[] {
            name + ": gradients down, fp16 encoded on the device",
            f(down16),
            String.format("%.1f MB", HalfBlocks.bytes(params) / 1e6)
          });
      rows.add(
          new String[] {
            name + ": gradients down, fp32", f(down32), String.format("%.1f MB", 4 * params / 1e6)
          });
    }

    /**
     * A step that keeps the driver's update next to the worker, on one device: no transfer, no
     * Spark. The update prunes by movement along a ramp from 33 % to 10 % kept: every step selects
     * new masks by top-k per matrix.
     */
    private double updateResident(int reps, int warm) {
      long totalSteps = 1000;
      PruningConfig pruning =
          PruningConfig.of(
              // a third kept from the first step, as DriverUpdateBenchmark's mid-ramp state
              PruningCriterion.MOVEMENT, new SparsitySchedule(0, 0, 0, totalSteps, 0.33, 0.1), 0);
      try (DeviceDriverUpdate update =
          new DeviceDriverUpdate(
              pruning, OptimizerConfig.unstructuredDefaults(0, totalSteps), manager.getDevice())) {
        LinkedHashMap<String, HostTensor> all = new LinkedHashMap<>(BertInit.init(config, SEED));
        TrainingState state = update.initialState(all);
        if (!update.trainableNames(state).equals(names)) {
          throw new IllegalStateException("the update's trainable tensors are not the worker's");
        }
        return median(
            reps,
            warm,
            () -> {
              try (NDManager scope = manager.newSubManager()) {
                FlatParameters w = update.effectiveWeights(state, scope);
                WorkerStep.Accumulated a =
                    cap.accumulate(
                        scope, frozen, w, one, deviceBank, BATCH, SEED, DataType.FLOAT32);
                update.apply(state, a.gradient());
                a.terms().get(5).getDouble();
              }
            });
      }
    }

    private void residentStep(WorkerStep step, FlatParameters w) {
      try (NDManager scope = manager.newSubManager()) {
        WorkerStep.Accumulated a =
            step.accumulate(scope, frozen, w, one, deviceBank, BATCH, SEED, DataType.FLOAT32);
        a.terms().get(5).getDouble(); // waits for the backward pass, reads 8 bytes
      }
    }

    @Override
    public void close() {
      deviceWeights.close();
      deviceBank.close();
      manager.close();
    }
  }

  static String f(double ms) {
    return String.format("%.1f", ms);
  }

  static double median(int reps, int warm, Runnable r) {
    for (int i = 0; i < warm; i++) {
      r.run();
    }
    double[] t = new double[reps];
    for (int i = 0; i < reps; i++) {
      long t0 = System.nanoTime();
      r.run();
      t[i] = (System.nanoTime() - t0) / 1e6;
    }
    Arrays.sort(t);
    return t[reps / 2];
  }

  /**
   * Rows {@code first}.. of the bank, random ids (first token 101), label row % 2, padded to SEQ.
   */
  static MicroBatch microBatch(int vocab, int first) {
    SplittableRandom r = new SplittableRandom(SEED + first);
    List<int[]> ids = new ArrayList<>();
    List<byte[]> types = new ArrayList<>();
    int[] labels = new int[BATCH];
    int[] rows = new int[BATCH];
    for (int i = 0; i < BATCH; i++) {
      int[] x = new int[SEQ];
      for (int t = 0; t < SEQ; t++) {
        x[t] = t == 0 ? Math.min(101, vocab - 1) : 1 + r.nextInt(vocab - 1);
      }
      ids.add(x);
      types.add(new byte[SEQ]);
      rows[i] = first + i;
      labels[i] = rows[i] % 2;
    }
    return new MicroBatch(TokenBatch.pad(ids, types, SEQ, 0), Targets.classes(labels), rows);
  }

  /** Rows 0..n-1 with label row % 2 (see {@link #bank(long[], int[], int, long, long)}). */
  static RepresentationBank bank(int n, int hidden) {
    long[] index = new long[n];
    int[] labels = new int[n];
    for (int i = 0; i < n; i++) {
      index[i] = i;
      labels[i] = i % 2;
    }
    return bank(index, labels, hidden, n, SEED);
  }

  /**
   * A bank for these rows with random teacher logits (2 classes) and PRE, FINE and one SNAP slice
   * of random unit vectors; also what spark-job's CapPruneBench measures with.
   */
  public static RepresentationBank bank(
      long[] index, int[] labels, int hidden, long trainingSetSize, long seed) {
    int n = index.length;
    SplittableRandom r = new SplittableRandom(seed);
    float[] logits = new float[n * 2];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) r.nextGaussian();
    }
    RepresentationBank b =
        new RepresentationBank(index, labels, logits, 2, hidden, trainingSetSize);
    for (RepresentationBank.Kind k : RepresentationBank.Kind.values()) {
      float[] v = new float[n * hidden];
      for (int row = 0; row < n; row++) {
        double norm = 0;
        for (int j = 0; j < hidden; j++) {
          float x = (float) r.nextGaussian();
          v[row * hidden + j] = x;
          norm += x * x;
        }
        float inv = (float) (1 / Math.sqrt(norm));
        for (int j = 0; j < hidden; j++) {
          v[row * hidden + j] *= inv;
        }
      }
      b.addSlice(k, v);
    }
    return b;
  }

  /**
   * One CAP step on the CPU and on {@code device} from the same weights, dropout off and no extra
   * negatives (the two engines' generators differ): loss terms and gradients must agree. Then the
   * device's fp16 encoding of the device gradient against the host encoder on the same floats.
   */
  static void check(Device device, List<String[]> rows) {
    BertConfig c = config(30522, 384, 6, 1536, 0f);
    Map<String, HostTensor> all = BertInit.init(c, SEED);
    LinkedHashMap<String, HostTensor> frozenHost = new LinkedHashMap<>();
    LinkedHashMap<String, HostTensor> trainable = new LinkedHashMap<>();
    all.forEach((k, v) -> (ParameterNames.isEmbedding(k) ? frozenHost : trainable).put(k, v));
    RepresentationBank bank = bank(BANK_ROWS, c.hiddenSize());
    List<MicroBatch> mbs = List.of(microBatch(c.vocabSize(), 0));
    WorkerStep step =
        new WorkerStep(
            new BertForSequenceClassification(c),
            new CapLoss(CapLossConfig.defaults().withExtraExamples(0)));
    WorkerStep.Result[] r = new WorkerStep.Result[2];
    float[][] encodedCheck = new float[1][];
    boolean[] same = new boolean[1];
    Device[] devices = {Device.cpu(), device};
    for (int d = 0; d < 2; d++) {
      try (NDManager m = NDManager.newBaseManager(devices[d])) {
        Map<String, NDArray> frozen = NDArrays.toNDArrays(m, frozenHost, DataType.FLOAT32);
        r[d] = step.run(m, frozen, trainable, mbs, bank, BATCH, SEED, DataType.FLOAT32);
        if (d == 1) {
          NDArray g = m.create(r[d].flatGradient());
          HalfBlocks.Encoded onDevice = HalfBlocks.encode(g);
          HalfBlocks.Encoded onHost = HalfBlocks.encode(r[d].flatGradient());
          same[0] =
              Arrays.equals(onDevice.halves(), onHost.halves())
                  && Arrays.equals(onDevice.exponents(), onHost.exponents());
          encodedCheck[0] = r[d].flatGradient();
        }
      }
    }
    double maxTerm = 0;
    for (Map.Entry<String, Double> t : r[0].terms().byName().entrySet()) {
      maxTerm = Math.max(maxTerm, Math.abs(t.getValue() - r[1].terms().byName().get(t.getKey())));
    }
    float[] a = r[0].flatGradient();
    float[] b = r[1].flatGradient();
    double maxDiff = 0;
    double maxAbs = 0;
    for (int i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      maxAbs = Math.max(maxAbs, Math.abs(a[i]));
    }
    System.out.printf(
        "check: CPU vs %s, MiniLM size, CAP without extra negatives, dropout off:"
            + " terms %s vs %s (max |diff| %.2e), gradients max |diff| %.2e (max |g| %.2e);"
            + " device fp16 encoding %s the host's%n",
        device,
        r[0].terms().byName(),
        r[1].terms().byName(),
        maxTerm,
        maxDiff,
        maxAbs,
        same[0] ? "bit-identical to" : "DIFFERS from");
    rows.add(
        new String[] {
          "check: loss terms CPU vs device, max |diff|",
          String.format("%.1e", maxTerm),
          "MiniLM size, dropout off, no extra negatives"
        });
    rows.add(
        new String[] {
          "check: gradients CPU vs device, max |diff|",
          String.format("%.1e", maxDiff),
          String.format("max |g| %.1e", maxAbs)
        });
    rows.add(
        new String[] {
          "check: fp16 gradient encoding, device vs host",
          same[0] ? "identical" : "DIFFERS",
          encodedCheck[0].length + " values"
        });
  }
}
