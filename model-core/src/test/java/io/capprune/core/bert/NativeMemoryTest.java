package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Targets;
import io.capprune.core.prune.ParameterNames;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.testing.TestModels;
import io.capprune.core.train.MicroBatch;
import io.capprune.core.train.TokenBatch;
import io.capprune.core.train.WorkerStep;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Native memory stays flat over many training steps of the real worker path: {@link WorkerStep}
 * with the full CAP loss, the frozen embeddings and the shard's bank resident on the device as a
 * worker keeps them, and each step's weights uploaded and freed as a new broadcast is.
 *
 * <p>The steps run in a JVM of their own with a small heap that is resident from the start ({@code
 * -Xms = -Xmx}, {@code AlwaysPreTouch}) and bounded direct buffers: in the test JVM the resident
 * size also grows while the garbage collector first touches its young generation (about 200 MB over
 * 250 steps, measured), which would hide a native leak of that size.
 */
class NativeMemoryTest {

  static final int ROWS = 64;
  static final int STEPS = 250;
  static final int WARMUP = 100;

  @Test
  void workerStepsDoNotGrowNativeMemory() throws IOException, InterruptedException {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> cmd =
        List.of(
            java.toString(),
            "-Xms192m",
            "-Xmx192m",
            "-XX:+AlwaysPreTouch",
            "-XX:MaxDirectMemorySize=64m",
            "-Dai.djl.offline=true",
            "-Dai.djl.default_engine=PyTorch",
            "-cp",
            System.getProperty("java.class.path"),
            NativeMemoryTest.class.getName());
    Process child = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    List<String> lines = new ArrayList<>();
    try (BufferedReader out =
        new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = out.readLine()) != null; ) {
        lines.add(line);
        if (line.startsWith("NativeMemoryTest")) {
          System.out.println(line);
        }
      }
    }
    assertEquals(0, child.waitFor(), "the steps' JVM failed:\n" + String.join("\n", lines));
    Map<Integer, long[]> at = new LinkedHashMap<>(); // step -> {arrays, RSS kB}
    for (String line : lines) {
      String[] f = line.split(" ");
      if (f.length == 6 && f[0].equals("NativeMemoryTest:") && f[1].equals("step")) {
        at.put(Integer.parseInt(f[2]), new long[] {Long.parseLong(f[3]), Long.parseLong(f[4])});
      }
    }
    assertEquals(List.of(-1, 0, 50, WARMUP, 150, 200, STEPS), List.copyOf(at.keySet()), "samples");
    long resident = at.get(-1)[0];
    for (Map.Entry<Integer, long[]> e : at.entrySet()) {
      assertEquals(resident, e.getValue()[0], "arrays left behind after step " + e.getKey());
    }
    // The array count above is the exact leak check; RSS also moves with the allocator's arenas
    // and the JIT on a loaded machine, so it only guards against gross native leaks.
    long growth = at.get(STEPS)[1] - at.get(WARMUP)[1];
    assertTrue(
        growth < 48 * 1024,
        "RSS grew by " + growth / 1024 + " MB over " + (STEPS - WARMUP) + " steps");
  }

  /**
   * The steps, in the JVM {@link #workerStepsDoNotGrowNativeMemory} starts. Prints "step S ARRAYS
   * RSS_KB MILLISECONDS" before the first step (S = -1), every 50 steps and after the last.
   */
  public static void main(String[] args) throws IOException {
    // One intra-op thread: on a loaded machine a second one spins and slows every small op.
    DjlRuntime.start(1);
    long t0 = System.nanoTime();
    BertConfig c = TestModels.tiny(2);
    Map<String, HostTensor> weights = BertInit.init(c, 1);
    LinkedHashMap<String, HostTensor> trainable = new LinkedHashMap<>();
    weights.forEach(
        (name, t) -> {
          if (!ParameterNames.isEmbedding(name)) {
            trainable.put(name, t);
          }
        });
    CapLoss loss = new CapLoss(CapLossConfig.defaults().withExtraExamples(16));
    WorkerStep step = new WorkerStep(new BertForSequenceClassification(c), loss);
    SplittableRandom rng = new SplittableRandom(3);
    try (NDManager base = NDManager.newBaseManager();
        DeviceBank bank = DeviceBank.upload(base, bank(c, rng))) {
      Map<String, NDArray> frozen = new LinkedHashMap<>();
      weights.forEach(
          (name, t) -> {
            if (ParameterNames.isEmbedding(name)) {
              frozen.put(name, NDArrays.toNDArray(base, t, DataType.FLOAT32));
            }
          });
      sample(-1, base, t0);
      for (int s = 0; s < STEPS; s++) {
        if (s % 50 == 0) {
          sample(s, base, t0);
        }
        // FP32 and FP16 wire in turn: both encoders run on the device
        WirePrecision wire = s % 2 == 0 ? WirePrecision.FP32 : WirePrecision.FP16;
        WorkerStep.Result r;
        try (NDManager broadcast = base.newSubManager()) {
          FlatParameters w = FlatParameters.upload(broadcast, trainable);
          r = step.run(base, frozen, w, microBatches(c, rng), bank, 16, s, DataType.FLOAT32, wire);
        }
        double total = r.terms().total();
        if (!(Double.isFinite(total) && total > 0) || r.precision() != wire || r.examples() != 8) {
          throw new IllegalStateException(
              "step "
                  + s
                  + ": loss "
                  + total
                  + ", "
                  + r.precision()
                  + ", "
                  + r.examples()
                  + " examples");
        }
      }
      sample(STEPS, base, t0);
    }
  }

  private static void sample(int step, NDManager base, long t0) throws IOException {
    System.out.println(
        "NativeMemoryTest: step "
            + step
            + " "
            + base.getManagedArrays().size()
            + " "
            + rssKb()
            + " "
            + (System.nanoTime() - t0) / 1_000_000);
  }

  /** A shard of 64 rows of a 256-row training set: labels, teacher logits, PRE, FINE, 2 SNAP. */
  private static RepresentationBank bank(BertConfig c, SplittableRandom rng) {
    long[] index = new long[ROWS];
    int[] labels = new int[ROWS];
    float[] teacher = new float[ROWS * c.numLabels()];
    for (int i = 0; i < ROWS; i++) {
      index[i] = 4L * i + 1;
      labels[i] = i % c.numLabels();
    }
    for (int i = 0; i < teacher.length; i++) {
      teacher[i] = (float) rng.nextGaussian();
    }
    RepresentationBank bank =
        new RepresentationBank(index, labels, teacher, c.numLabels(), c.hiddenSize(), 4L * ROWS);
    bank.addSlice(Kind.PRE, unitRows(rng, c.hiddenSize()));
    bank.addSlice(Kind.FINE, unitRows(rng, c.hiddenSize()));
    bank.addSlice(Kind.SNAP, unitRows(rng, c.hiddenSize()));
    bank.addSlice(Kind.SNAP, unitRows(rng, c.hiddenSize()));
    return bank;
  }

  private static float[] unitRows(SplittableRandom rng, int h) {
    float[] v = new float[ROWS * h];
    for (int i = 0; i < ROWS; i++) {
      double n = 0;
      for (int j = 0; j < h; j++) {
        v[i * h + j] = (float) rng.nextGaussian();
        n += v[i * h + j] * (double) v[i * h + j];
      }
      for (int j = 0; j < h; j++) {
        v[i * h + j] /= (float) Math.sqrt(n);
      }
    }
    return v;
  }

  /**
   * This partition's 8 rows of a global batch of 16, in two micro-batches of 4 random distinct
   * rows, each padded to its own longest example (3-12 tokens): shapes change from step to step.
   */
  private static List<MicroBatch> microBatches(BertConfig c, SplittableRandom rng) {
    int[] order = rng.ints(0, ROWS).distinct().limit(8).toArray();
    List<MicroBatch> out = new ArrayList<>();
    for (int m = 0; m < 2; m++) {
      List<int[]> ids = new ArrayList<>();
      List<byte[]> types = new ArrayList<>();
      int[] rows = new int[4];
      int[] labels = new int[4];
      for (int i = 0; i < 4; i++) {
        rows[i] = order[4 * m + i];
        labels[i] = rows[i] % c.numLabels();
        int[] x = new int[3 + rng.nextInt(10)];
        for (int j = 0; j < x.length; j++) {
          x[j] = rng.nextInt(c.vocabSize());
        }
        ids.add(x);
        types.add(new byte[x.length]);
      }
      out.add(new MicroBatch(TokenBatch.pad(ids, types, 0, 0), Targets.classes(labels), rows));
    }
    return out;
  }

  private static long rssKb() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    throw new IllegalStateException("no VmRSS in /proc/self/status");
  }
}
